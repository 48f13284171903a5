package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/assign"
	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/pipeline"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// engineSender puts the engine's messages in the outbox.
type engineSender struct{ s *pipeline.Sender }

func (e engineSender) Send(ctx context.Context, channel string, m *adapters.Outbound, meta engine.SendMeta) error {
	id := meta.MemberID
	_, err := e.s.Send(ctx, channel, m, pipeline.OutboxMeta{MemberID: &id, GuideID: meta.GuideID, BrandID: meta.Brand, Queue: meta.Queue})
	return err
}

// engineAssigner binds members for assign_guide steps: the member's
// current guide, else per the assignment rules (a QR code's store, the
// brand's online pool).
type engineAssigner struct{ a *assign.Assigner }

func (e engineAssigner) Assign(ctx context.Context, memberID int64, brand string) (string, string, error) {
	b, err := e.a.Assign(ctx, assign.Request{MemberID: memberID, Brand: brand})
	if errors.Is(err, assign.ErrUnassigned) {
		return "", "", engine.ErrNoGuide
	}
	if err != nil {
		return "", "", err
	}
	return b.GuideID, b.StoreID, nil
}

// wireEngine builds the workflow engine and hands it every logged event.
func (a *App) wireEngine() error {
	eng, err := engine.New(engine.Options{Store: a.Store, Queue: a.Queue, Templates: a.Templates,
		Sender: engineSender{a.sender}, Assigner: engineAssigner{a.assigner}, Locale: a.Config.Locale,
		Logger: a.Log, WakeQueue: pipeline.QueueWorkflows, WebhookSecret: a.webhookSecret})
	if err != nil {
		return err
	}
	a.engine = eng
	if err := a.wireGuidePoints(); err != nil {
		return err
	}
	a.contacts.OnLogged = a.guidePoints.Then(eng.HandleEvent)
	a.commerce.OnLogged = a.guidePoints.Then(eng.HandleEvent)
	a.messages.OnLogged = eng.HandleEvent
	return nil
}

// webhookSecret is the signing secret a workflow's webhook step names:
// "default" is webhook.secret; others come from SCRMGW_WEBHOOK_SECRET_<NAME>.
func (a *App) webhookSecret(name string) ([]byte, error) {
	v := ""
	if name == "default" {
		v = a.Config.Webhook.Secret
	}
	if v == "" {
		v = os.Getenv("SCRMGW_WEBHOOK_SECRET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	if v == "" {
		return nil, fmt.Errorf("webhook secret %q is not configured (webhook.secret for \"default\", else SCRMGW_WEBHOOK_SECRET_%s)",
			name, strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	if b64, ok := strings.CutPrefix(v, "whsec_"); ok {
		return base64.StdEncoding.DecodeString(b64)
	}
	return []byte(v), nil
}
