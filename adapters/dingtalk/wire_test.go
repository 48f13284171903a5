package dingtalk

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"

	"github.com/scrmgw/scrmgw/adapters"
)

func TestDecodeBot(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    *adapters.Inbound
		wantErr bool
	}{
		{
			name: "group text from a guide",
			data: `{"conversationId":"cidG==","conversationType":"2","conversationTitle":"Store 12","msgId":"m1",
				"senderStaffId":"guide01","senderId":"$:LWCP_v1:$x","senderNick":"Wang","createAt":1700000000123,
				"sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=abc","sessionWebhookExpiredTime":1700005400123,
				"robotCode":"dingrobot","msgtype":"text","text":{"content":"  my tasks \n"},"isInAtList":true}`,
			want: &adapters.Inbound{
				Channel: "dingtalk", DedupKey: "m1", SenderID: "guide01", ConversationID: "cidG==", Kind: "text", Text: "my tasks",
				Attrs: map[string]string{"sender_nick": "Wang", "conversation_title": "Store 12", "msgtype": "text"},
				ReplyTo: map[string]string{"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=abc",
					"session_webhook_expires": "1700005400123", "conversation_type": "2", "robot_code": "dingrobot"},
				At: time.UnixMilli(1700000000123),
			},
		},
		{
			name: "audio with speech recognition",
			data: `{"msgId":"m2","senderId":"$:LWCP_v1:$y","msgtype":"audio","content":{"duration":4000,"downloadCode":"dl","recognition":"where is my order"}}`,
			want: &adapters.Inbound{
				Channel: "dingtalk", DedupKey: "m2", SenderID: "$:LWCP_v1:$y", Kind: "audio", Text: "where is my order",
				Attrs: map[string]string{"msgtype": "audio", "download_code": "dl"}, ReplyTo: map[string]string{},
			},
		},
		{
			name: "file",
			data: `{"msgId":"m3","senderStaffId":"s","msgtype":"file","content":{"downloadCode":"dl","fileName":"invoice.pdf"}}`,
			want: &adapters.Inbound{
				Channel: "dingtalk", DedupKey: "m3", SenderID: "s", Kind: "file",
				Attrs: map[string]string{"msgtype": "file", "download_code": "dl", "file_name": "invoice.pdf"}, ReplyTo: map[string]string{},
			},
		},
		{
			name: "picture with only a picture download code",
			data: `{"msgId":"m4","senderStaffId":"s","msgtype":"picture","content":{"pictureDownloadCode":"pdl"}}`,
			want: &adapters.Inbound{
				Channel: "dingtalk", DedupKey: "m4", SenderID: "s", Kind: "image",
				Attrs: map[string]string{"msgtype": "picture", "download_code": "pdl"}, ReplyTo: map[string]string{},
			},
		},
		{
			name: "unknown kind is kept",
			data: `{"msgId":"m5","senderStaffId":"s","msgtype":"interactiveCard","content":{"x":1}}`,
			want: &adapters.Inbound{
				Channel: "dingtalk", DedupKey: "m5", SenderID: "s", Kind: "interactiveCard",
				Attrs: map[string]string{"msgtype": "interactiveCard"}, ReplyTo: map[string]string{},
			},
		},
		{name: "not JSON", data: `{`, wantErr: true},
		{name: "no msgId", data: `{"senderStaffId":"s","msgtype":"text","text":{"content":"x"}}`, wantErr: true},
		{name: "no sender", data: `{"msgId":"m","msgtype":"text","text":{"content":"x"}}`, wantErr: true},
		{name: "bad content", data: `{"msgId":"m","senderStaffId":"s","msgtype":"richText","content":"oops"}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := decodeBot(tc.data)
			if tc.wantErr {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("decodeBot() error = %v, want errMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("inbound (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeOrgEvent(t *testing.T) {
	frame := func(eventType, eventID, born, data string) *payload.DataFrame {
		return &payload.DataFrame{Type: "EVENT", Data: data, Headers: payload.DataFrameHeader{
			"topic": "*", "eventType": eventType, "eventId": eventID, "eventBornTime": born, "eventCorpId": "corp"}}
	}
	tests := []struct {
		name      string
		df        *payload.DataFrame
		wantKnown bool
		wantErr   bool
		wantUsers []string
		wantAt    time.Time
	}{
		{"string timestamp", frame("user_add_org", "e1", "", `{"userId":["a","b"],"timeStamp":"1700000000000"}`), true, false, []string{"a", "b"}, time.UnixMilli(1700000000000)},
		{"number timestamp, born time wins", frame("user_leave_org", "e2", "1700000000999", `{"userId":["a"],"timeStamp":1700000000000}`), true, false, []string{"a"}, time.UnixMilli(1700000000999)},
		{"empty user ids skipped", frame("user_modify_org", "e3", "", `{"userId":["","c"]}`), true, false, []string{"c"}, time.Time{}},
		{"unknown type", frame("chat_disband", "e4", "", `{}`), false, false, nil, time.Time{}},
		{"no event id", frame("user_add_org", "", "", `{"userId":["a"]}`), true, true, nil, time.Time{}},
		{"bad timestamp", frame("user_add_org", "e5", "", `{"userId":["a"],"timeStamp":"soon"}`), true, true, nil, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ins, known, err := decodeOrgEvent(tc.df)
			if known != tc.wantKnown || (err != nil) != tc.wantErr {
				t.Fatalf("decodeOrgEvent() known %v, error %v", known, err)
			}
			var users []string
			for _, in := range ins {
				users = append(users, in.SenderID)
				if in.DedupKey != tc.df.Headers["eventId"]+":"+in.SenderID || !in.At.Equal(tc.wantAt) {
					t.Errorf("inbound %+v", in)
				}
			}
			if diff := cmp.Diff(tc.wantUsers, users); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTitle(t *testing.T) {
	long := strings.Repeat("店", 70)
	tests := []struct {
		m    adapters.Outbound
		want string
	}{
		{adapters.Outbound{Text: "# Hello\nworld"}, "Hello"},
		{adapters.Outbound{Text: "x", Fields: map[string]string{"title": "T"}}, "T"},
		{adapters.Outbound{Text: long}, strings.Repeat("店", 64)},
	}
	for _, tc := range tests {
		if got := title(&tc.m); got != tc.want {
			t.Errorf("title(%q) = %q, want %q", tc.m.Text, got, tc.want)
		}
	}
}

// FuzzDecodeBot checks that no robot message data makes the decoder
// panic, and that what it accepts can be deduplicated.
func FuzzDecodeBot(f *testing.F) {
	f.Add(`{"msgId":"m","senderStaffId":"s","msgtype":"text","text":{"content":"hi"}}`)
	f.Add(`{"msgId":"m","senderId":"x","msgtype":"richText","content":{"richText":[{"text":"a"},{"downloadCode":"d"}]}}`)
	f.Add(`{"msgId":"m","senderId":"x","msgtype":"picture","content":null}`)
	f.Add(`{"msgId":1}`)
	f.Fuzz(func(t *testing.T, data string) {
		in, _, err := decodeBot(data)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			return
		}
		if in.DedupKey == "" || in.SenderID == "" || in.Channel != "dingtalk" || in.Kind == "" {
			t.Fatalf("accepted an inbound without its keys: %+v", in)
		}
	})
}

// FuzzDecodeOrgEvent does the same for contact events.
func FuzzDecodeOrgEvent(f *testing.F) {
	f.Add("user_add_org", "e1", `{"userId":["a"],"timeStamp":"1"}`)
	f.Add("user_leave_org", "e2", `{"userId":[],"timeStamp":2}`)
	f.Fuzz(func(t *testing.T, eventType, eventID, data string) {
		df := &payload.DataFrame{Data: data, Headers: payload.DataFrameHeader{"eventType": eventType, "eventId": eventID}}
		ins, _, err := decodeOrgEvent(df)
		if err != nil {
			return
		}
		for _, in := range ins {
			if in.SenderID == "" || !strings.HasPrefix(in.DedupKey, eventID+":") || eventID == "" {
				t.Fatalf("inbound %+v", in)
			}
		}
	})
}
