package app

import (
	"context"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
)

// handoverPollInterval is how often requested WeCom handovers are
// checked (WeCom moves a customer 24 hours after the request unless they
// refuse). Tests shorten it.
var handoverPollInterval = time.Hour

// handoverGiveUp is how long a handover WeCom never reports on waits
// before it fails for an operator (assign.HandoverOptions.GiveUp); tests
// shorten it.
var handoverGiveUp = 7 * 24 * time.Hour

// EventContactTransferFailed is WeCom's transfer_fail: a handed-over
// customer refused their new guide, or the new guide has too many.
const EventContactTransferFailed = "contact.transfer_failed"

// wireHandovers sets up the durable handover of the customers of WeCom
// employees who leave the corp (离职继承), when WeCom is enabled: on
// every WeCom instance, each handover on the corp that reported the
// departure and asked of that corp.
func (a *App) wireHandovers() {
	xfers := map[string]assign.ResignedTransferer{}
	for _, c := range a.weComClients() {
		xfers[c.Name()] = wecomResigned{api: c.API()}
	}
	if len(xfers) == 0 {
		return
	}
	a.handovers = assign.NewHandovers(a.assigner, xfers, a.Queue, assign.HandoverOptions{
		PollInterval: handoverPollInterval, GiveUp: handoverGiveUp, Queue: queue.Default, Logger: a.Log})
	a.processor.On(inbox.OnEvent(EventContactTransferFailed), inbox.HandlerFunc(func(ctx context.Context, in *adapters.Inbound) error {
		if !a.handovers.Handles(in.Channel) {
			return nil
		}
		return a.handovers.TransferFailed(ctx, in.Channel, in.Attrs["user_id"], in.SenderID, in.Attrs["fail_reason"])
	}))
}

// weComClients are the WeCom instances registered, in the registry's
// order (the default instance first when configured).
func (a *App) weComClients() []*wecom.Client {
	var out []*wecom.Client
	for _, name := range a.Channels.Names() {
		ch, _ := a.Channels.Channel(name)
		if c, ok := ch.(*wecom.Client); ok {
			out = append(out, c)
		}
	}
	return out
}

// wecomResigned is assign.ResignedTransferer over WeCom's
// resigned/transfer_customer and resigned/transfer_result.
type wecomResigned struct{ api *wecom.API }

func (w wecomResigned) TransferResigned(ctx context.Context, from, to string, ids []string) ([]assign.TransferOutcome, error) {
	res, err := w.api.TransferResignedCustomer(ctx, from, to, ids)
	if err != nil {
		if wecom.InDoubt(err) {
			return nil, fmt.Errorf("%w: %w", err, adapters.ErrOutcomeUnknown)
		}
		return nil, err
	}
	out := make([]assign.TransferOutcome, 0, len(res))
	for _, r := range res {
		o := assign.TransferOutcome{ExternalID: r.ExternalUserID, Code: r.ErrCode}
		switch r.ErrCode {
		case 0, wecom.TransferInProgress, wecom.TransferAlreadyMoving:
			o.Result = assign.TransferAccepted
		case wecom.TransferTakeoverFull:
			o.Result = assign.TransferTakeoverFull
		case wecom.TransferTooSoon:
			o.Result = assign.TransferTooSoon
		case wecom.TransferNotFollower, 40096, 84061:
			o.Result = assign.TransferNotContact
		case wecom.TransferNotResigned:
			o.Result = assign.TransferNotYet
		default:
			o.Result = assign.TransferRefused
		}
		out = append(out, o)
	}
	return out, nil
}

func (w wecomResigned) ResignedTransferStatus(ctx context.Context, from, to string) (map[string]assign.TakeoverStatus, error) {
	res, err := w.api.ResignedTransferResult(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make(map[string]assign.TakeoverStatus, len(res))
	for _, t := range res {
		switch t.Status {
		case wecom.TakeoverDone:
			out[t.ExternalUserID] = assign.TakeoverDone
		case wecom.TakeoverWaiting:
			out[t.ExternalUserID] = assign.TakeoverWaiting
		case wecom.TakeoverRefused:
			out[t.ExternalUserID] = assign.TakeoverRefused
		case wecom.TakeoverLimit:
			out[t.ExternalUserID] = assign.TakeoverFull
		}
	}
	return out, nil
}
