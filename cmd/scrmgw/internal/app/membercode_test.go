package app

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMemberCodeAtTheTillWithRedis: a member asks WeCom customer service
// for her member code (a signed kf callback, then sync_msg); the reply
// kf/send_msg the fake received is her code as text, which the brand's
// POS then identifies her by: name, masked phone, level and points. The
// till of another brand does not know the code.
func TestMemberCodeAtTheTillWithRedis(t *testing.T) {
	s, fake := handoffWeCom(t, 30*time.Minute)
	tok := "handoff-e2e-admin-token-01"
	code, body := request(t, "POST", s.base+"/api/v1/tokens", tok, `{"name":"acme pos","brand":"acme"}`)
	var pos struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &pos); code != 201 || err != nil {
		t.Fatalf("token: %d %s", code, body)
	}

	kfSay(t, s, fake, "会员码")
	sent := waitKF(t, fake, 1, "会员码：")
	var wire map[string]any
	if err := json.Unmarshal(sent.Body, &wire); err != nil {
		t.Fatal(err)
	}
	delete(wire, "msgid") // the gateway's idempotency key, checked by the fake
	text, _ := wire["text"].(map[string]any)["content"].(string)
	re := regexp.MustCompile(`^陈女士的ACME会员码：\n(97\d\d \d{4} \d{4} \d{4} \d\d)\n结账时报出或出示此号码，收银员即可识别会员、积分和可用优惠券。\d\d:\d\d前有效，过期请再发送“会员码”。$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("kf reply text = %q, want the member code", text)
	}
	want := map[string]any{"touser": "wmKF", "open_kfid": "wkKF1", "msgtype": "text", "text": map[string]any{"content": text}}
	if d := cmp.Diff(want, wire); d != "" {
		t.Errorf("kf/send_msg body (-want +got):\n%s", d)
	}
	memberCode := strings.ReplaceAll(m[1], " ", "")

	code, body = request(t, "POST", s.base+"/api/v1/pos/identify", pos.Token, `{"code":"`+memberCode+`"}`)
	if code != 200 {
		t.Fatalf("identify: %d %s", code, body)
	}
	var got map[string]any
	json.Unmarshal([]byte(body), &got)
	member, _ := got["member"].(map[string]any)
	if got["brand"] != "acme" || member["name"] != "陈女士" || member["phone"] != "+86138****8000" || got["points"] != 0.0 {
		t.Errorf("identify = %s", body)
	}
	if strings.Contains(body, "13800138000") {
		t.Errorf("identify shows the full phone: %s", body)
	}
	// Another brand's till: not found, nothing said about the code.
	request(t, "POST", s.base+"/api/v1/brands", tok, `{"id":"zeta","name":"Zeta"}`)
	code, body = request(t, "POST", s.base+"/api/v1/pos/identify", tok, `{"code":"`+memberCode+`","brand":"zeta"}`)
	if code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("zeta identify: %d %s", code, body)
	}
}
