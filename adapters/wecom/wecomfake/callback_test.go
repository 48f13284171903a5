package wecomfake_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// open decrypts and parses a callback request as the gateway would.
func open(t *testing.T, req *http.Request) *wecom.Message {
	t.Helper()
	cr, err := wecom.NewCrypto(wecomfake.DefaultToken, wecomfake.DefaultEncodingAESKey, wecomfake.DefaultCorpID)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := cr.Decrypt(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	m, err := wecom.ParseMessage(plain)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, plain)
	}
	return m
}

func TestCallbackRequests(t *testing.T) {
	at := time.Unix(1700000000, 0)
	cb := wecomfake.Callback{AgentID: "1000002", Now: func() time.Time { return at }}
	tests := []struct {
		name string
		xml  []byte
		want wecom.Message
	}{
		{"add_external_contact", func() []byte {
			e := wecomfake.AddExternalContact("guide01", "wmMember0001", "store-0451", "WELCOMECODE")
			e.CreateTime = at
			return e.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "sys", CreateTime: at.Unix(), MsgType: "event",
			Event: "change_external_contact", ChangeType: "add_external_contact", UserID: "guide01", ExternalUserID: "wmMember0001",
			State: "store-0451", WelcomeCode: "WELCOMECODE"}},
		{"del_follow_user", func() []byte {
			e := wecomfake.DelFollowUser("guide01", "wmMember0001")
			e.CreateTime = at
			return e.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "sys", CreateTime: at.Unix(), MsgType: "event",
			Event: "change_external_contact", ChangeType: "del_follow_user", UserID: "guide01", ExternalUserID: "wmMember0001"}},
		{"del_external_contact", func() []byte {
			e := wecomfake.DelExternalContact("guide01", "wmMember0001")
			e.Source, e.CreateTime = "DELETE_BY_TRANSFER", at
			return e.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "sys", CreateTime: at.Unix(), MsgType: "event",
			Event: "change_external_contact", ChangeType: "del_external_contact", UserID: "guide01", ExternalUserID: "wmMember0001",
			Source: "DELETE_BY_TRANSFER"}},
		{"edit_external_contact", func() []byte {
			e := wecomfake.EditExternalContact("guide01", "wmMember0001")
			e.CreateTime = at
			return e.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "sys", CreateTime: at.Unix(), MsgType: "event",
			Event: "change_external_contact", ChangeType: "edit_external_contact", UserID: "guide01", ExternalUserID: "wmMember0001"}},
		{"delete_user", func() []byte {
			e := wecomfake.DeleteUser("guide01")
			e.CreateTime = at
			return e.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "sys", CreateTime: at.Unix(), MsgType: "event",
			Event: "change_contact", ChangeType: "delete_user", UserID: "guide01"}},
		{"transfer_fail", func() []byte {
			e := wecomfake.TransferFail("guide02", "wmMember0001", "customer_refused")
			e.CreateTime = at
			return e.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "sys", CreateTime: at.Unix(), MsgType: "event",
			Event: "change_external_contact", ChangeType: "transfer_fail", UserID: "guide02", ExternalUserID: "wmMember0001",
			FailReason: "customer_refused"}},
		{"kf_msg_or_event", wecomfake.KfMsgOrEvent{Token: "ENCtoken", OpenKfID: "wkStore", CreateTime: at}.XML(),
			wecom.Message{ToUserName: wecomfake.DefaultCorpID, CreateTime: at.Unix(), MsgType: "event", Event: "kf_msg_or_event",
				Token: "ENCtoken", OpenKfID: "wkStore"}},
		{"text with cdata end", func() []byte {
			m := wecomfake.EmployeeText("1000002", "guide01", "a]]>b <&> 今天")
			m.MsgID, m.CreateTime = "1234567890123456", at
			return m.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "guide01", CreateTime: at.Unix(), MsgType: "text",
			AgentID: "1000002", MsgID: "1234567890123456", Content: "a]]>b <&> 今天"}},
		{"location", func() []byte {
			m := wecomfake.EmployeeLocation("1000002", "guide01", 31.2304, 121.4737, "人民广场")
			m.MsgID, m.CreateTime = "1234567890123457", at
			return m.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "guide01", CreateTime: at.Unix(), MsgType: "location",
			AgentID: "1000002", MsgID: "1234567890123457", Latitude: 31.2304, Longitude: 121.4737, Scale: 15, Label: "人民广场"}},
		{"image", func() []byte {
			m := wecomfake.EmployeeImage("1000002", "guide01", "https://wework.qpic.cn/wwpic/1/0", "MEDIA")
			m.MsgID, m.CreateTime = "1234567890123458", at
			return m.XML()
		}(), wecom.Message{ToUserName: wecomfake.DefaultCorpID, FromUserName: "guide01", CreateTime: at.Unix(), MsgType: "image",
			AgentID: "1000002", MsgID: "1234567890123458", PicURL: "https://wework.qpic.cn/wwpic/1/0", MediaID: "MEDIA"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := cb.Request("http://gateway.test/callbacks/wecom", tc.xml)
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodPost || req.URL.Query().Get("timestamp") != strconv.FormatInt(at.Unix(), 10) {
				t.Errorf("request %s %s", req.Method, req.URL)
			}
			got := open(t, req)
			if diff := cmp.Diff(&tc.want, got); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCallbackEnvelope(t *testing.T) {
	body, q, err := wecomfake.Callback{AgentID: "1000002"}.Seal([]byte("<xml><MsgType>text</MsgType></xml>"))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		ToUserName string `xml:"ToUserName"`
		AgentID    string `xml:"AgentID"`
		Encrypt    string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	if env.ToUserName != wecomfake.DefaultCorpID || env.AgentID != "1000002" || env.Encrypt == "" {
		t.Errorf("envelope %+v", env)
	}
	if len(q.Get("msg_signature")) != 40 || q.Get("nonce") == "" || q.Get("timestamp") == "" {
		t.Errorf("query %v", q)
	}
}

func TestVerifyURLRequest(t *testing.T) {
	req, echo, err := wecomfake.Callback{}.VerifyURLRequest("http://gateway.test/callbacks/wecom?x=1")
	if err != nil {
		t.Fatal(err)
	}
	cr, err := wecom.NewCrypto(wecomfake.DefaultToken, wecomfake.DefaultEncodingAESKey, wecomfake.DefaultCorpID)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	got, err := cr.VerifyURL(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != echo || req.Method != http.MethodGet || q.Get("x") != "1" {
		t.Errorf("echo %q, want %q (%s %s)", got, echo, req.Method, req.URL)
	}

	// Another token does not verify.
	other, err := wecom.NewCrypto("other", wecomfake.DefaultEncodingAESKey, wecomfake.DefaultCorpID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.VerifyURL(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr")); err == nil {
		t.Error("verified with the wrong token")
	}
}
