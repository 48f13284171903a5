package app

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/gateway/storepage"
	"github.com/scrmgw/scrmgw/store"
)

// TestStorePageAddsGuideWithRedis: the gateway serves the store page; a
// guide's QR code made through the admin API (WeCom add_contact_way on
// the fake) shows on it beside her store; a member who scans it and adds
// her on WeCom (the signed add_external_contact callback with the code's
// state) is bound to her.
func TestStorePageAddsGuideWithRedis(t *testing.T) {
	s, fake := handoffWeCom(t, 30*time.Minute)
	tok := "handoff-e2e-admin-token-01"
	if code, body := request(t, "POST", s.base+"/api/v1/guides", tok, `{"id":"g-wang","store_id":"sh-1","name":"王芳","wecom_userid":"wang"}`); code != 201 {
		t.Fatalf("guide: %d %s", code, body)
	}
	fake.AddEmployees("wang")
	code, body := request(t, "POST", s.base+"/api/v1/guides/g-wang/contact-way", tok, "")
	var cw store.ContactWay
	if err := json.Unmarshal([]byte(body), &cw); code != 201 || err != nil || cw.QRCode == "" || cw.State != "g:g-wang" {
		t.Fatalf("contact way: %d %s", code, body)
	}

	req, _ := http.NewRequest("GET", s.base+"/m/stores?brand=acme&lat=31.2305&lng=121.4705", nil)
	req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != storepage.CSP {
		t.Fatalf("store page: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	text := html.UnescapeString(string(page))
	for _, w := range []string{"静安店", "李娜", "王芳", `src="` + cw.QRCode + `"`} {
		if !strings.Contains(text, w) {
			t.Errorf("store page lacks %q:\n%s", w, page)
		}
	}
	if code, _ := request(t, "GET", s.base+"/m/stores?brand=nope", "", ""); code != 404 {
		t.Errorf("unknown brand: %d", code)
	}

	// A new member scans 王芳's code and adds her.
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmNew", Name: "孙女士",
		FollowUsers: []wecom.FollowUser{{UserID: "wang", State: cw.State, RemarkMobiles: []string{"13700137000"}}}})
	ev := wecomfake.AddExternalContact("wang", "wmNew", cw.State, fake.IssueWelcomeCode("wmNew"))
	ev.CreateTime = time.Now().Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("contact callback: %d", status)
	}
	ctx := context.Background()
	waitFor(t, "the member bound to 王芳", func() bool {
		v, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmNew")
		return err == nil && len(v.Bindings) == 1 && v.Bindings[0].GuideID == "g-wang" && v.Bindings[0].StoreID == "sh-1"
	})
}
