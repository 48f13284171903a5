package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/event"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
)

// FuzzHandleFrame feeds the stream's frame handling arbitrary WebSocket
// messages, as readLoop and handleFrame see them, with the inbox
// working or failing (fail). Properties:
//
//   - nothing panics;
//   - a message that is not a frame gets no ack (readLoop skips it);
//   - every frame handed to the handler gets exactly one ack, for its
//     own messageId;
//   - a frame whose data cannot be decoded is recorded nowhere, and its
//     ack says "dropped: malformed", never a plain success (a robot
//     message is not redelivered by DingTalk whatever the answer, and a
//     LATER would have an event redelivered forever);
//   - a frame is acked as success only if everything it carries was
//     recorded; when recording fails the ack asks for a redelivery
//     (events: LATER) or reports the failure (robot messages: 500);
//   - what is recorded is well formed: channel dingtalk, a dedup key
//     that comes from the frame (a robot message's msgId, an event's
//     eventId:userId), a kind;
//   - frames the channel does not handle are answered 404 and recorded
//     nowhere.
//
// Seeds: testdata/fuzz/FuzzHandleFrame (robot messages of every kind,
// contact events, SYSTEM frames, and malformed variants of each).
func FuzzHandleFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte, fail bool) {
		rec := newMemRecorder()
		if fail {
			rec.setFail(errors.New("inbox unavailable"))
		}
		c, err := New(Config{ClientID: "fuzz-app", ClientSecret: "fuzz-secret", Brand: "acme"}, Deps{
			Recorder: rec, Tokens: newMemTokens(), Guides: guidesNamed("guide01"),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		c.recordTries, c.recordRetry = 2, 0

		// What readLoop does with the message.
		df, err := payload.DecodeDataFrame(msg)
		if err != nil || df.Headers == nil {
			return // skipped, nothing acked
		}
		if df.Type == typeSystem {
			if df.GetTopic() == topicPing {
				if pong := pongAck(df); pong.GetHeader(payload.DataFrameHeaderKMessageId) != df.GetMessageId() || pong.Data != df.Data {
					t.Fatalf("pong %+v does not answer ping %+v", pong, df)
				}
			}
			return
		}
		ack := c.handleFrame(context.Background(), df)
		if ack == nil {
			t.Fatalf("no ack for %s frame %q", df.Type, df.GetTopic())
		}
		if got := ack.GetHeader(payload.DataFrameHeaderKMessageId); got != df.GetMessageId() {
			t.Fatalf("ack for message %q carries id %q", df.GetMessageId(), got)
		}
		recorded := rec.Recorded()
		for _, in := range recorded {
			if in.Channel != ChannelName || in.DedupKey == "" || in.Kind == "" || in.Brand != "acme" {
				t.Fatalf("recorded a malformed inbound: %+v", in)
			}
		}
		if fail && len(recorded) > 0 {
			t.Fatalf("recorded %d inbounds through a failing inbox", len(recorded))
		}
		success := ack.Code == payload.DataFrameResponseStatusCodeKOK

		switch {
		case df.Type == typeCallback && df.GetTopic() == payload.BotMessageCallbackTopic:
			in, m, err := decodeBot(df.Data)
			if err != nil {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("decodeBot error %v is not errMalformed", err)
				}
				if rec.Calls() != 0 || ack.Message != "dropped: malformed" {
					t.Fatalf("malformed robot message: %d Record calls, ack %+v", rec.Calls(), ack)
				}
				return
			}
			if in.DedupKey != m.MsgId {
				t.Fatalf("dedup key %q is not the msgId %q", in.DedupKey, m.MsgId)
			}
			if fail {
				if success || rec.Calls() != c.recordTries {
					t.Fatalf("robot message not recorded, yet acked %+v after %d tries", ack, rec.Calls())
				}
				return
			}
			if !success || len(recorded) != 1 || recorded[0].DedupKey != m.MsgId {
				t.Fatalf("robot message %q: ack %+v, recorded %+v", m.MsgId, ack, recorded)
			}
		case df.Type == typeEvent:
			ins, known, err := decodeOrgEvent(df)
			var res event.EventProcessResult
			if jerr := json.Unmarshal([]byte(ack.Data), &res); jerr != nil {
				t.Fatalf("event ack data %q: %v", ack.Data, jerr)
			}
			switch {
			case !known:
				if rec.Calls() != 0 || !success {
					t.Fatalf("unknown event %q: %d Record calls, ack %+v", df.GetHeader("eventType"), rec.Calls(), ack)
				}
			case err != nil:
				if rec.Calls() != 0 || res.Message != "dropped: malformed" {
					t.Fatalf("malformed event: %d Record calls, ack %+v", rec.Calls(), ack)
				}
			case fail && len(ins) > 0:
				if success || res.Status != event.EventProcessStatusKLater {
					t.Fatalf("event not recorded, yet acked %+v", ack)
				}
			case !fail:
				want := map[string]bool{}
				for _, in := range ins {
					if !strings.HasPrefix(in.DedupKey, df.GetHeader("eventId")+":") || in.SenderID == "" {
						t.Fatalf("event inbound %+v: key not eventId:userId", in)
					}
					want[in.DedupKey] = true
				}
				if !success || len(recorded) != len(want) {
					t.Fatalf("event with %d users: ack %+v, %d recorded", len(want), ack, len(recorded))
				}
			}
		default:
			if ack.Code != payload.DataFrameResponseStatusCodeKHandlerNotFound || rec.Calls() != 0 {
				t.Fatalf("unhandled %s frame %q: ack %+v, %d Record calls", df.Type, df.GetTopic(), ack, rec.Calls())
			}
		}
	})
}
