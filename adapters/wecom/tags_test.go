package wecom_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestMarkTags: tags are marked by name as the guide; a name the corp
// lacks is created in the scrmgw group first, a name it has is not;
// removals by name take every tag of that name; names WeCom would refuse
// are refused before any call.
func TestMarkTags(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li", "wang")
	vip := fake.AddCorpTag("客户等级", "VIP")
	old := fake.AddCorpTag("客户等级", "老客")
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", FollowUsers: []wecom.FollowUser{{UserID: "wang"}, {UserID: "li", TagIDs: []string{old}}}})
	cfg := fake.Config()
	cfg.Brand = "acme"
	c := newSendClient(t, cfg)
	ctx := context.Background()

	if err := c.MarkTags(ctx, "li", "wmChen", []string{"VIP", "生日月"}, []string{"老客"}); err != nil {
		t.Fatalf("MarkTags: %v", err)
	}
	var birthday string
	for _, tg := range fake.CorpTags() {
		if tg.Name == "生日月" {
			birthday = tg.ID
			if tg.GroupName != wecom.DefaultTagGroup {
				t.Errorf("生日月 created in group %q, want %q", tg.GroupName, wecom.DefaultTagGroup)
			}
		}
	}
	if birthday == "" {
		t.Fatalf("生日月 not created: %+v", fake.CorpTags())
	}
	marks := fake.MarkTags()
	if len(marks) != 1 {
		t.Fatalf("%d mark_tag calls, want 1", len(marks))
	}
	var body map[string]any
	if err := json.Unmarshal(marks[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"userid": "li", "external_userid": "wmChen",
		"add_tag": []any{vip, birthday}, "remove_tag": []any{old}}
	if d := cmp.Diff(want, body); d != "" {
		t.Errorf("mark_tag body (-want +got):\n%s", d)
	}
	if got := fake.CustomerTags("wmChen", "li"); !slices.Equal(got, []string{"VIP", "生日月"}) {
		t.Errorf("li's tags on wmChen = %v", got)
	}
	if n := fake.CallCount(wecomfake.PathAddCorpTag); n != 1 {
		t.Errorf("%d add_corp_tag calls, want 1", n)
	}

	// Again: nothing to create; via "" is the first employee who has them.
	if err := c.MarkTags(ctx, "", "wmChen", []string{"生日月"}, nil); err != nil {
		t.Fatalf("MarkTags again: %v", err)
	}
	if n := fake.CallCount(wecomfake.PathAddCorpTag); n != 1 {
		t.Errorf("%d add_corp_tag calls after a known tag, want 1", n)
	}
	if m := fake.MarkTags()[1]; m.UserID != "wang" {
		t.Errorf("mark_tag without a guide went as %q, want wang (the first who has the customer)", m.UserID)
	}

	calls := len(fake.Calls())
	for _, bad := range []string{strings.Repeat("长", wecom.MaxTagNameRunes+1), " VIP", ""} {
		err := c.MarkTags(ctx, "li", "wmChen", []string{bad}, nil)
		if !errors.Is(err, adapters.ErrInvalidMessage) {
			t.Errorf("MarkTags(%q) = %v, want ErrInvalidMessage", bad, err)
		}
	}
	if n := len(fake.Calls()); n != calls {
		t.Errorf("refused tags made %d calls", n-calls)
	}
	if err := c.MarkTags(ctx, "li", "wmNobody", []string{"VIP"}, nil); !errors.Is(err, adapters.ErrInvalidRecipient) {
		t.Errorf("MarkTags on a stranger = %v, want ErrInvalidRecipient", err)
	}
}

// TestCorpTagLibrary: the library is read, tags created, renamed and
// deleted through the API with WeCom's request shapes.
func TestCorpTagLibrary(t *testing.T) {
	fake := wecomfake.New(t)
	cfg := fake.Config()
	cfg.Brand = "acme"
	c := newSendClient(t, cfg)
	api, err := wecom.NewAPI(cfg, newMemTokens(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created, err := api.AddCorpTags(ctx, "会员", []string{"金卡", "银卡"})
	if err != nil || len(created) != 2 || created[0].Name != "金卡" || created[0].GroupName != "会员" || created[0].ID == "" {
		t.Fatalf("AddCorpTags = %+v, %v", created, err)
	}
	var ae *adapters.APIError
	if _, err := api.AddCorpTags(ctx, "会员", []string{"金卡"}); !errors.As(err, &ae) || ae.Code != wecomfake.CodeTagNameExists {
		t.Errorf("adding an existing tag = %v, want errcode %d", err, wecomfake.CodeTagNameExists)
	}
	if err := api.RenameCorpTag(ctx, created[1].ID, "白银卡"); err != nil {
		t.Fatalf("RenameCorpTag: %v", err)
	}
	if err := api.DeleteCorpTags(ctx, []string{created[0].ID}, nil); err != nil {
		t.Fatalf("DeleteCorpTags: %v", err)
	}
	if err := api.DeleteCorpTags(ctx, []string{created[0].ID}, nil); !errors.As(err, &ae) || ae.Code != wecomfake.CodeInvalidTagID {
		t.Errorf("deleting a deleted tag = %v, want errcode %d", err, wecomfake.CodeInvalidTagID)
	}
	tags, err := c.Tags(ctx)
	want := []adapters.ChannelTag{{ID: created[1].ID, Name: "白银卡", GroupID: created[1].GroupID, GroupName: "会员"}}
	if err != nil || !cmp.Equal(tags, want) {
		t.Errorf("Tags = %+v, %v; want %+v", tags, err, want)
	}
}

// TestTagChangeCallback: a change_external_tag callback is recorded as
// tags.changed with its tag, kind and change, keyed so that WeCom's
// retries are one delivery.
func TestTagChangeCallback(t *testing.T) {
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
	ev := wecomfake.TagChange{ID: "etTAG1", TagType: "tag", ChangeType: "update"}
	for range 2 {
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
	if len(rec.ins) != 2 || rec.ins[0].DedupKey != rec.ins[1].DedupKey {
		t.Fatalf("recorded %+v; want two deliveries with one key", rec.ins)
	}
	in := rec.ins[0]
	want := map[string]string{"id": "etTAG1", "tag_type": "tag", "change_type": "update", "strategy_id": ""}
	if in.Kind != "event" || in.Event != "tags.changed" || in.Brand != "acme" || !cmp.Equal(in.Attrs, want) {
		t.Errorf("inbound = %+v", in)
	}
	if !strings.HasPrefix(in.DedupKey, "tag:"+wecomfake.DefaultCorpID+":") {
		t.Errorf("dedup key %q", in.DedupKey)
	}
}
