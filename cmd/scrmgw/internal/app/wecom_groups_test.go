package app

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

func deliverChat(t *testing.T, s *started, ev wecomfake.ChatChange) {
	t.Helper()
	for range 2 { // WeCom retries: one delivery
		if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
			t.Fatalf("change_external_chat %s %s: %d %q", ev.ChangeType, ev.UpdateDetail, status, body)
		}
	}
}

type groupAnswer struct {
	store.CustomerGroup
	Stats   store.GroupStats
	Members []struct {
		UserID   string `json:"user_id"`
		Guide    bool   `json:"guide"`
		MemberID *int64 `json:"member_id"`
		Name     string `json:"name"`
	}
}

// TestWeComCustomerGroupsWithRedis is the journey for customer
// groups: guide li's group is created in WeCom with a member in it; the
// change_external_chat callbacks (each delivered twice) keep the group,
// its store and brand, and its members matched to members as they join
// and leave; the API lists the store's groups with their counts and
// sends a message to the group through li (a group message task), once
// a day, and tells when li sent it (the periodic delivery check); a
// dismissed group is refused.
func TestWeComCustomerGroupsWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	chen := joinWeComMember(t, s, fake, "wmChen", "陈女士")
	joinWeComMember(t, s, fake, "wmWang", "王先生")

	chat := fake.CreateGroup("li", "静安店VIP群", "wmChen", "wmWang")
	deliverChat(t, s, wecomfake.ChatChange{ChatID: chat, ChangeType: "create"})
	ctx := context.Background()
	waitFor(t, "the group", func() bool {
		ms, _ := s.app.Store.CustomerGroupMembers(ctx, "wecom", chat)
		return len(ms) == 3
	})

	last, cur := fake.JoinGroup(chat, "wmZhao")
	time.Sleep(1100 * time.Millisecond)
	deliverChat(t, s, wecomfake.ChatChange{ChatID: chat, ChangeType: "update", UpdateDetail: "add_member", JoinScene: 3,
		MemChangeList: []string{"wmZhao"}, LastMemVer: last, CurMemVer: cur})
	last, cur = fake.LeaveGroup(chat, "wmWang")
	deliverChat(t, s, wecomfake.ChatChange{ChatID: chat, ChangeType: "update", UpdateDetail: "del_member", QuitScene: 0,
		MemChangeList: []string{"wmWang"}, LastMemVer: last, CurMemVer: cur})
	fake.ChangeGroup(chat, func(g *wecomfake.Group) { g.Name = "静安店VIP会员群" })
	deliverChat(t, s, wecomfake.ChatChange{ChatID: chat, ChangeType: "update", UpdateDetail: "change_name"})
	waitFor(t, "the renamed group", func() bool {
		g, err := s.app.Store.CustomerGroup(ctx, "wecom", chat)
		return err == nil && g.Name == "静安店VIP会员群"
	})

	code, body := request(t, "GET", s.base+"/api/v1/groups?store_id=sh-1", tok, "")
	var listed struct{ Items []groupAnswer }
	if code != 200 || json.Unmarshal([]byte(body), &listed) != nil || len(listed.Items) != 1 {
		t.Fatalf("GET /groups: %d %s", code, body)
	}
	g := listed.Items[0]
	if g.ChatID != chat || g.BrandID != "acme" || g.GuideID != "g-li" || g.StoreID != "sh-1" || g.OwnerID != "li" || g.State != "active" {
		t.Errorf("group = %+v", g.CustomerGroup)
	}
	if want := (store.GroupStats{Members: 3, Contacts: 2, Joins: 4, Leaves: 1}); g.Stats != want {
		t.Errorf("stats = %+v, want %+v", g.Stats, want)
	}
	code, body = request(t, "GET", s.base+"/api/v1/channels/wecom/groups/"+chat, tok, "")
	var one groupAnswer
	if code != 200 || json.Unmarshal([]byte(body), &one) != nil {
		t.Fatalf("GET group: %d %s", code, body)
	}
	var got []string
	for _, m := range one.Members {
		id := "-"
		if m.MemberID != nil {
			id = "member"
		}
		got = append(got, m.UserID+":"+id)
	}
	if want := []string{"li:-", "wmChen:member", "wmZhao:-"}; !slices.Equal(got, want) {
		t.Errorf("members = %v, want %v (guide first; wmZhao is no member yet)", got, want)
	}
	if one.Members[1].MemberID == nil || *one.Members[1].MemberID != chen.ID {
		t.Errorf("wmChen matched to %v, want member %d", one.Members[1].MemberID, chen.ID)
	}

	// A message to the group through its owner.
	msg := `{"channel":"wecom","brand":"acme","chat_ids":["` + chat + `"],"kind":"text","text":"本周六会员日，到店有礼","key":"campaign-1"}`
	code, body = request(t, "POST", s.base+"/api/v1/groups/messages", tok, msg)
	if code != 200 {
		t.Fatalf("POST /groups/messages: %d %s", code, body)
	}
	tasks := fake.GroupMsgTemplates()
	if len(tasks) != 1 {
		t.Fatalf("%d group message tasks", len(tasks))
	}
	var sent map[string]any
	json.Unmarshal(tasks[0].Body, &sent)
	want := map[string]any{"chat_type": "group", "chat_id_list": []any{chat}, "sender": "li", "text": map[string]any{"content": "本周六会员日，到店有礼"}}
	if d := cmp.Diff(want, sent); d != "" {
		t.Errorf("add_msg_template (-want +got):\n%s", d)
	}
	if !strings.Contains(body, tasks[0].MsgID) {
		t.Errorf("answer %s does not name the task %s", body, tasks[0].MsgID)
	}
	// A retry of the same request is the same message; another is one too many today.
	if code, body := request(t, "POST", s.base+"/api/v1/groups/messages", tok, msg); code != 200 || !strings.Contains(body, tasks[0].MsgID) {
		t.Errorf("the request again: %d %s", code, body)
	}
	// The owner sends the task in WeCom; the periodic check records it
	// and the request again tells it.
	fake.ConfirmMsgTemplate(tasks[0].MsgID)
	if err := s.app.checkGroupDeliveries(ctx, nil); err != nil {
		t.Fatal(err)
	}
	code, body = request(t, "POST", s.base+"/api/v1/groups/messages", tok, msg)
	var answer struct {
		Tasks []map[string]any `json:"tasks"`
	}
	json.Unmarshal([]byte(body), &answer)
	wantTasks := []map[string]any{{"owner": "li", "chat_ids": []any{chat}, "msg_id": tasks[0].MsgID, "delivered": []any{chat}}}
	if d := cmp.Diff(wantTasks, answer.Tasks); code != 200 || d != "" {
		t.Errorf("the request once the owner sent it: %d (-want +got):\n%s", code, d)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/groups/messages", tok, strings.Replace(msg, "campaign-1", "campaign-2", 1)); code != 409 {
		t.Errorf("a second message today: %d %s", code, body)
	}
	if n := len(fake.GroupMsgTemplates()); n != 1 {
		t.Errorf("%d group message tasks after the refused one", n)
	}

	// Dismissed: the group is kept as dismissed, its members gone; a
	// message to it is refused before WeCom is asked.
	fake.ChangeGroup(chat, func(g *wecomfake.Group) { g.Dismissed = true })
	deliverChat(t, s, wecomfake.ChatChange{ChatID: chat, ChangeType: "dismiss"})
	waitFor(t, "the dismissal", func() bool {
		g, err := s.app.Store.CustomerGroup(ctx, "wecom", chat)
		return err == nil && g.State == "dismissed"
	})
	calls := len(fake.Calls())
	code, body = request(t, "POST", s.base+"/api/v1/groups/messages", tok, strings.Replace(msg, "campaign-1", "campaign-3", 1))
	if code != 400 || !strings.Contains(body, "dismissed") {
		t.Errorf("a message to a dismissed group: %d %s", code, body)
	}
	if n := len(fake.Calls()); n != calls {
		t.Errorf("a refused message made %d WeCom calls", n-calls)
	}
}

// TestWeComGroupWelcomeAndResyncWithRedis: a group welcome template is
// added from a text and a link card with WeCom's shape; a resync reads
// the groups WeCom has that no callback announced.
func TestWeComGroupWelcomeAndResyncWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	code, body := request(t, "POST", s.base+"/api/v1/channels/wecom/groups/welcome", tok,
		`{"kind":"news","text":"欢迎入群！","fields":{"title":"会员权益","url":"https://acme.example/vip","description":"入群即享9折"}}`)
	if code != 201 {
		t.Fatalf("POST welcome: %d %s", code, body)
	}
	ws := fake.GroupWelcomes()
	if len(ws) != 1 || !strings.Contains(body, ws[0].TemplateID) {
		t.Fatalf("welcomes = %+v, answer %s", ws, body)
	}
	var sent map[string]any
	json.Unmarshal(ws[0].Body, &sent)
	want := map[string]any{"text": map[string]any{"content": "欢迎入群！"}, "notify": float64(0),
		"link": map[string]any{"title": "会员权益", "url": "https://acme.example/vip", "desc": "入群即享9折"}}
	if d := cmp.Diff(want, sent); d != "" {
		t.Errorf("group_welcome_template/add (-want +got):\n%s", d)
	}

	a := fake.CreateGroup("li", "群A")
	b := fake.CreateGroup("li", "群B")
	code, body = request(t, "POST", s.base+"/api/v1/channels/wecom/groups/resync", tok, `{"owners":["li"],"rate":50}`)
	if code != 200 || body != `{"groups":2}` {
		t.Fatalf("resync: %d %s", code, body)
	}
	for _, id := range []string{a, b} {
		if _, err := s.app.Store.CustomerGroup(context.Background(), "wecom", id); err != nil {
			t.Errorf("group %s after resync: %v", id, err)
		}
	}
}
