package dingtalk_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/templates"
)

// memberData is a member of a Shanghai store with a recent order and a
// coupon.
func memberData() *templates.Data {
	shanghai := time.FixedZone("CST", 8*3600)
	return &templates.Data{
		Member: templates.Member{Name: "王小美", Level: "gold", Points: 1280, PhoneTail: "5678"},
		Guide:  templates.Guide{Name: "李娜", Store: "静安嘉里中心店"},
		Store:  templates.Store{Name: "静安嘉里中心店", Address: "上海市静安区南京西路1515号B1-12", OpeningHours: "10:00-22:00"},
		Order: templates.Order{ID: "SO20240502001", Total: 45800, PurchasedAt: time.Date(2024, 5, 1, 23, 30, 0, 0, time.UTC),
			Items: []templates.Item{{SKU: "SK-001", Name: "氨基酸洁面乳", Qty: 1}, {SKU: "SK-014", Name: "保湿精华水", Qty: 2}}},
		Brand:    templates.Brand{Name: "山茶花"},
		Coupon:   templates.Coupon{Code: "NEW50-8Q2X", Value: 5000, ExpiresAt: time.Date(2024, 6, 30, 23, 59, 59, 0, shanghai)},
		TimeZone: "Asia/Shanghai",
	}
}

// TestShippedTemplatesOnDingTalk renders the DingTalk variants of the
// shipped nudges through the real templates package and sends them
// through the real client, proactively and as a reply through a session
// webhook: the fake DingTalk receives exactly the message template and
// parameters (sampleActionCard with title, text, singleTitle, singleURL;
// actionCard on the webhook) made of the rendered fields, and the
// channel's Spec previews exactly the request sent.
func TestShippedTemplatesOnDingTalk(t *testing.T) {
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		t.Fatal(err)
	}
	api := dingtalkfake.NewOpenAPI(t)
	c, err := dingtalk.New(dingtalk.Config{ClientID: dingtalkfake.DefaultClientID, ClientSecret: dingtalkfake.DefaultClientSecret, APIBase: api.URL()},
		dingtalk.Deps{Recorder: &inbox{seen: map[string]bool{}}, Tokens: &tokens{m: map[string]string{}},
			Guides: dingtalk.GuideFunc(func(context.Context, string) (bool, error) { return false, nil })})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"win_back", "first_purchase_coupon", "repurchase_reminder"} {
		tmpl, _ := reg.Lookup(id)
		if ks := tmpl.Kinds(dingtalk.ChannelName); len(ks) == 0 || slices.ContainsFunc(ks, func(k string) bool { return !slices.Contains(dingtalk.Kinds, k) }) {
			t.Errorf("%s renders %v on DingTalk, which sends %v", id, ks, dingtalk.Kinds)
		}
		for _, locale := range tmpl.Locales() {
			t.Run(id+"."+locale, func(t *testing.T) {
				msg, err := reg.Render(id, locale, dingtalk.ChannelName, memberData())
				if err != nil {
					t.Fatal(err)
				}
				if msg.Kind != adapters.KindActionCard || msg.Variant != dingtalk.ChannelName {
					t.Fatalf("rendered %s/%s, want the dingtalk action_card variant", msg.Kind, msg.Variant)
				}
				param, _ := json.Marshal(map[string]string{"title": msg.Fields["title"], "text": msg.Text,
					"singleTitle": msg.Fields["single_title"], "singleURL": msg.Fields["single_url"]})

				m := &adapters.Outbound{IdempotencyKey: "wf:7:" + id, To: "manager4220", ToParty: adapters.PartyMember,
					Kind: msg.Kind, Text: msg.Text, Fields: msg.Fields}
				r, err := c.Send(context.Background(), m)
				if err != nil {
					t.Fatal(err)
				}
				sent := api.Sent()
				want := dingtalkfake.SentMessage{Path: dingtalkfake.PathBatchSend, RobotCode: dingtalkfake.DefaultClientID,
					UserIDs: []string{"manager4220"}, MsgKey: "sampleActionCard", MsgParam: string(param),
					ProcessQueryKey: r.ExternalID, InvalidStaffIDs: []string{}, FlowControlledStaffIDs: []string{}}
				if diff := cmp.Diff(want, sent[len(sent)-1]); diff != "" {
					t.Errorf("batchSend (-want +got):\n%s", diff)
				}
				preview, err := c.Spec().Preview(m)
				if err != nil {
					t.Fatal(err)
				}
				wantBody, _ := json.Marshal(map[string]any{"robotCode": want.RobotCode, "userIds": want.UserIDs,
					"msgKey": want.MsgKey, "msgParam": want.MsgParam})
				if preview.API != "robot/oToMessages/batchSend" || !jsonEqual(t, preview.Body, wantBody) {
					t.Errorf("Preview = %s %s", preview.API, preview.Body)
				}

				hook, exp := api.NewSessionWebhook("cidMember==", time.Hour)
				reply := *m
				reply.ReplyTo = map[string]string{"session_webhook": hook, "session_webhook_expires": strconv.FormatInt(exp.UnixMilli(), 10)}
				if _, err := c.Send(context.Background(), &reply); err != nil {
					t.Fatal(err)
				}
				replies := api.Replies()
				wantReply := `{"actionCard":` + string(param) + `,"msgtype":"actionCard"}`
				if got := string(replies[len(replies)-1].Body); got != wantReply {
					t.Errorf("session webhook got\n%s\nwant\n%s", got, wantReply)
				}
			})
		}
	}
	// What a member sees, written out once.
	sent := api.Sent()
	var p map[string]string
	if err := json.Unmarshal([]byte(sent[0].MsgParam), &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"title":       "山茶花想您了",
		"text":        "### 好久不见，王小美\n李娜给您留了一张 **¥50** 回归券，6月30日前有效。\n您还有 1280 积分，到静安嘉里中心店消费可以一起用。",
		"singleTitle": "领取回归券",
		"singleURL":   "https://shop.example.com/coupons/NEW50-8Q2X",
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("win_back zh on DingTalk (-want +got):\n%s", diff)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return cmp.Equal(x, y)
}
