package wecom

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// kfOriginCustomer marks kf messages sent by the WeChat user (the member);
// 4 is system events, 5 the servicer's own messages.
const kfOriginCustomer = 3

// kfPageSize is how many messages one sync_msg call asks for (WeCom's
// maximum is 1000).
const kfPageSize = 1000

// Expand pulls the customer-service messages a kf_msg_or_event announced
// (kf/sync_msg from the stored cursor) and records each member message as
// its own delivery, keyed by its msgid; the cursor is saved after each
// page is recorded, so a crash re-reads at most one page, which the inbox
// then ignores.
func (c *Client) Expand(ctx context.Context, in *adapters.Inbound) (bool, error) {
	if in.Channel != c.key || in.Event != "kf.notify" {
		return false, nil
	}
	openKfID := in.Attrs["open_kfid"]
	key := "wecom:kf:" + c.cfg.CorpID + ":" + openKfID
	cursor, err := c.cursors.Cursor(ctx, key)
	if err != nil {
		return true, fmt.Errorf("reading kf cursor: %w", err)
	}
	for pages := 0; pages < 100; pages++ {
		page, err := c.api.KFSyncMsg(ctx, cursor, in.Attrs["token"], openKfID, kfPageSize)
		if err != nil {
			return true, fmt.Errorf("syncing kf messages: %w", err)
		}
		for i := range page.Messages {
			msg := c.kfInbound(&page.Messages[i])
			if msg == nil {
				continue
			}
			if err := c.rec.Record(ctx, msg); err != nil {
				return true, fmt.Errorf("recording kf message: %w", err)
			}
		}
		if page.NextCursor != "" {
			cursor = page.NextCursor
			if err := c.cursors.SetCursor(ctx, key, cursor); err != nil {
				return true, fmt.Errorf("saving kf cursor: %w", err)
			}
		}
		if !page.HasMore {
			return true, nil
		}
	}
	c.log.Warn("kf sync stopped after 100 pages; the next notification continues", slog.String("open_kfid", openKfID))
	return true, nil
}

// kfInbound maps a member's kf message; system events and our own
// messages are nil.
func (c *Client) kfInbound(m *KFMessage) *adapters.Inbound {
	if m.Origin != kfOriginCustomer || m.MsgID == "" {
		return nil
	}
	in := &adapters.Inbound{Channel: c.key, DedupKey: "kfmsg:" + m.MsgID, Brand: c.brand, From: adapters.PartyMember,
		SenderID: m.ExternalUserID, ConversationID: m.OpenKfID, Kind: m.MsgType, At: time.Unix(m.SendTime, 0).UTC(),
		ReplyTo: map[string]string{"open_kfid": m.OpenKfID}}
	switch m.MsgType {
	case MsgTypeText:
		in.Text = m.Text
	case MsgTypeLocation:
		in.Location = &adapters.Location{Lat: m.Latitude, Lng: m.Longitude, Label: m.LocationName}
	case MsgTypeImage:
		in.Attrs = map[string]string{"media_id": m.MediaID}
	default:
		in.Attrs = map[string]string{"msg_type": m.MsgType}
	}
	return in
}
