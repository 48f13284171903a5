package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestWeComAcquisitionLinkWithRedis is the journey for
// acquisition links: the store's link is made for its active guides
// (create_link asserted), its URL carries the store's state as
// customer_channel; a customer who comes through it (State in the
// add_external_contact callback) is bound to the store's guide they
// added. A low quota is shown with the link and by the quota endpoint,
// and WeCom's balance_low notice is counted in /metrics.
func TestWeComAcquisitionLinkWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	if code, body := request(t, "POST", s.base+"/api/v1/guides", tok, `{"id":"g-wang","store_id":"sh-1","name":"王强","wecom_userid":"wang"}`); code != 201 {
		t.Fatalf("guide: %d %s", code, body)
	}
	fake.AddEmployees("wang")
	fake.SetAcquisitionQuota(1000, 60)

	code, body := request(t, "POST", s.base+"/api/v1/stores/sh-1/acquisition-link", tok, "")
	if code != 201 {
		t.Fatalf("POST link: %d %s", code, body)
	}
	var link struct {
		State    string `json:"state"`
		ConfigID string `json:"config_id"`
		QRCode   string `json:"qr_code"`
		Quota    struct {
			Balance int
			Low     bool
		}
	}
	json.Unmarshal([]byte(body), &link)
	links := fake.AcquisitionLinks()
	if len(links) != 1 {
		t.Fatalf("%d links created", len(links))
	}
	var sent map[string]any
	json.Unmarshal(links[0].Body, &sent)
	want := map[string]any{"link_name": "静安店", "range": map[string]any{"user_list": []any{"li", "wang"}}, "skip_verify": true}
	if d := cmp.Diff(want, sent); d != "" {
		t.Errorf("create_link (-want +got):\n%s", d)
	}
	if link.State != "ca-s-sh-1" || link.ConfigID != links[0].LinkID || link.QRCode != links[0].URL+"?customer_channel=ca-s-sh-1" {
		t.Errorf("link = %+v", link)
	}
	if link.Quota.Balance != 60 || !link.Quota.Low {
		t.Errorf("quota with the link = %+v, want 60 and low", link.Quota)
	}

	// A customer opens the link and adds wang: WeCom says so with the state.
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmSun", Name: "孙女士", FollowUsers: []wecom.FollowUser{{UserID: "wang", State: "ca-s-sh-1"}}})
	ev := wecomfake.AddExternalContact("wang", "wmSun", "ca-s-sh-1", "")
	if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
		t.Fatalf("add_external_contact: %d %q", status, body)
	}
	waitFor(t, "the bound member", func() bool {
		v, err := s.app.Store.MemberByIdentity(context.Background(), "wecom", "wmSun")
		return err == nil && len(v.Bindings) > 0
	})
	v, _ := s.app.Store.MemberByIdentity(context.Background(), "wecom", "wmSun")
	if b := v.Bindings[0]; b.GuideID != "g-wang" || b.StoreID != "sh-1" || b.Reason != "state" {
		t.Errorf("binding = %+v, want g-wang of sh-1 by state", b)
	}

	code, body = request(t, "GET", s.base+"/api/v1/acquisition-quota", tok, "")
	if code != 200 || !strings.Contains(body, `"low":true`) || !strings.Contains(body, `"balance":60`) || !strings.Contains(body, `"channel":"wecom"`) {
		t.Errorf("GET quota: %d %s", code, body)
	}
	code, body = request(t, "GET", s.base+"/api/v1/acquisition-links?store_id=sh-1", tok, "")
	if code != 200 || !strings.Contains(body, links[0].LinkID) {
		t.Errorf("GET links: %d %s", code, body)
	}

	notice := wecomfake.AcquisitionNotice{ChangeType: "balance_low"}
	if status, body := deliver(t, s.base+wecom.CallbackPath, notice.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
		t.Fatalf("customer_acquisition: %d %q", status, body)
	}
	waitFor(t, "the notice counted", func() bool {
		_, body := request(t, "GET", s.base+"/metrics", tok, "")
		return strings.Contains(body, `scrmgw_link_notices_total{channel="wecom",notice="balance_low"} 1`)
	})

	// Out of quota: a clear error, nothing saved.
	fake.SetAcquisitionQuota(1000, 0)
	time.Sleep(10 * time.Millisecond)
	code, body = request(t, "POST", s.base+"/api/v1/guides/g-li/acquisition-link", tok, "")
	if code != 502 || !strings.Contains(body, "quota") {
		t.Errorf("a link over quota: %d %s", code, body)
	}
	code, body = request(t, "GET", s.base+"/api/v1/acquisition-links?guide_id=g-li", tok, "")
	if code != 200 || body != `{"items":[]}` {
		t.Errorf("links of g-li after the refused one: %d %s", code, body)
	}
}
