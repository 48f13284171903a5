package wecom_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestChatChangeCallback: change_external_chat callbacks, flat (create)
// and with a member list (add_member), are recorded as group.changed
// with what changed.
func TestChatChangeCallback(t *testing.T) {
	fake := wecomfake.New(t)
	cfg := fake.Config()
	cfg.Brand = "acme"
	rec := &recorded{}
	c, err := wecom.New(cfg, wecom.Deps{Recorder: rec, Tokens: newMemTokens(), Cursors: nopCursors{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Routes()[1].Handler)
	defer srv.Close()
	for _, ev := range []wecomfake.ChatChange{
		{ChatID: "wrGROUP1", ChangeType: "create"},
		{ChatID: "wrGROUP1", ChangeType: "update", UpdateDetail: "add_member", JoinScene: 3, MemChangeList: []string{"wmA", "wmB"}, LastMemVer: "v1", CurMemVer: "v2"},
	} {
		req, err := wecomfake.Callback{}.Request(srv.URL, ev.XML())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if len(rec.ins) != 2 || rec.ins[0].DedupKey == rec.ins[1].DedupKey {
		t.Fatalf("recorded %+v", rec.ins)
	}
	in := rec.ins[1]
	want := map[string]string{"chat_id": "wrGROUP1", "change_type": "update", "update_detail": "add_member", "join_scene": "3",
		"quit_scene": "0", "mem_change_cnt": "2", "mem_change_list": "wmA,wmB", "last_mem_ver": "v1", "cur_mem_ver": "v2"}
	if in.Event != "group.changed" || in.SenderID != "wrGROUP1" {
		t.Errorf("inbound = %+v", in)
	}
	if d := cmp.Diff(want, in.Attrs); d != "" {
		t.Errorf("attrs (-want +got):\n%s", d)
	}
}

// TestGroupLookupAndSend: a group is described with its members; a
// message goes to the owner's groups as one task; a group WeCom does not
// know is ErrInvalidRecipient; too many groups are refused before WeCom.
func TestGroupLookupAndSend(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	chat := fake.CreateGroup("li", "VIP群", "wmChen")
	cfg := fake.Config()
	cfg.Brand = "acme"
	c := newSendClient(t, cfg)
	ctx := context.Background()
	g, err := c.LookupGroup(ctx, chat)
	if err != nil || g.Name != "VIP群" || g.Owner != "li" || len(g.Members) != 2 || !g.Members[0].Guide || g.Members[1].ID != "wmChen" || g.Members[1].Guide {
		t.Fatalf("LookupGroup = %+v, %v", g, err)
	}
	if _, err := c.LookupGroup(ctx, "wrNOPE"); !errors.Is(err, adapters.ErrInvalidRecipient) {
		t.Errorf("an unknown group = %v, want ErrInvalidRecipient", err)
	}
	r, err := c.SendToGroups(ctx, "li", []string{chat}, &adapters.Outbound{Kind: adapters.KindText, Text: "上新"})
	if err != nil || !r.Pending || r.ExternalID == "" {
		t.Fatalf("SendToGroups = %+v, %v", r, err)
	}
	if ts := fake.GroupMsgTemplates(); len(ts) != 1 || ts[0].Sender != "li" || ts[0].Text != "上新" {
		t.Errorf("tasks = %+v", ts)
	}
	many := make([]string, wecom.MaxGroupsPerTask+1)
	for i := range many {
		many[i] = "wr" + string(rune('a'+i%26))
	}
	if _, err := c.SendToGroups(ctx, "li", many, &adapters.Outbound{Text: "x"}); !errors.Is(err, adapters.ErrInvalidMessage) {
		t.Errorf("2001 groups = %v, want ErrInvalidMessage", err)
	}
}
