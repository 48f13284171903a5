package groups_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/gateway/groups"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// memTokens is the access token cache of one test's WeCom client.
type memTokens struct {
	mu   sync.Mutex
	vals map[string]string
}

func (m *memTokens) Get(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.vals[key], nil
}

func (m *memTokens) Set(_ context.Context, key, token string, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vals[key] = token
	return nil
}

func (m *memTokens) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vals, key)
	return nil
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, *adapters.Inbound) error { return nil }

// groupRig is a Keeper over the WeCom channel on a fake, with li's two
// groups (vip, news) and wang's one (other) saved.
type groupRig struct {
	fake             *wecomfake.Server
	wecom            *wecom.Client
	keeper           *groups.Keeper
	store            *store.Store
	vip, news, other string
}

func newGroupRig(t *testing.T, s *store.Store) *groupRig {
	t.Helper()
	fake := wecomfake.New(t)
	fake.AddEmployees("li", "wang")
	cfg := fake.Config()
	cfg.Brand = "acme"
	c, err := wecom.New(cfg, wecom.Deps{Recorder: nopRecorder{}, Tokens: &memTokens{vals: map[string]string{}}, Cursors: s})
	if err != nil {
		t.Fatal(err)
	}
	reg := adapters.NewRegistry()
	reg.Register(c)
	r := &groupRig{fake: fake, wecom: c, keeper: groups.New(s, reg, nil), store: s,
		vip: fake.CreateGroup("li", "静安店VIP群", "wmChen"), news: fake.CreateGroup("li", "静安店新品群", "wmZhao"),
		other: fake.CreateGroup("wang", "王的群", "wmQian")}
	for _, id := range []string{r.vip, r.news, r.other} {
		if _, err := r.keeper.Sync(context.Background(), "wecom", []string{"acme"}, id, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// lisGroups are li's groups in the order a send takes them.
func (r *groupRig) lisGroups() []string { return slices.Sorted(slices.Values([]string{r.vip, r.news})) }

// today is the day of the sends (Beijing time).
func today() string { return time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly) }

// crashed leaves li's groups as a process that died calling WeCom for
// key leaves them: reserved, the attempt recorded, no msgid.
func (r *groupRig) crashed(t *testing.T, key string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range r.lisGroups() {
		if _, err := r.store.ReserveGroupSend(ctx, "wecom", id, today(), key); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.store.AttemptGroupSends(ctx, "wecom", r.lisGroups(), today(), key, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// msgIDs are the ids the store holds for key's sends to li's groups.
func (r *groupRig) msgIDs(t *testing.T, key string) []string {
	t.Helper()
	var out []string
	for _, id := range r.lisGroups() {
		rs, err := r.store.ReserveGroupSend(context.Background(), "wecom", id, today(), key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rs.MsgID)
	}
	return out
}

// lisTasks are the group message tasks the fake created for li.
func (r *groupRig) lisTasks() []wecomfake.GroupMsgTemplateRequest {
	return slices.DeleteFunc(r.fake.GroupMsgTemplates(), func(m wecomfake.GroupMsgTemplateRequest) bool { return m.Sender != "li" })
}

const dayText = "静安店会员日：本周六到店出示会员码，全场95折。"

func dayMessage() *adapters.Outbound {
	return &adapters.Outbound{Kind: adapters.KindText, Text: dayText}
}

// TestGroupSendRetryAsksWeCom is issue #19's crash window of group
// sends, from the wire on both databases: a retry of a send whose
// earlier call to add_msg_template may have gone out lists the corp's
// group tasks (get_groupmsg_list_v2, chat_type group) and asks which
// groups a task of the same content is for (get_groupmsg_send_result)
// before it sends; WeCom's task found, it records its msgid and creates
// none; not found, it creates exactly one; WeCom not answering, it
// sends nothing and a later retry does.
func TestGroupSendRetryAsksWeCom(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		send := func(r *groupRig, key string, ids ...string) ([]groups.Task, error) {
			return r.keeper.Send(ctx, groups.SendRequest{Channel: "wecom", Brand: "acme", ChatIDs: ids, Message: dayMessage(), Key: key})
		}
		wantOneTask := func(t *testing.T, r *groupRig, key string, tasks []groups.Task) {
			t.Helper()
			li := r.lisTasks()
			if len(li) != 1 {
				t.Fatalf("%d tasks for li at WeCom, want 1", len(li))
			}
			var body map[string]any
			if err := json.Unmarshal(li[0].Body, &body); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"chat_type": "group", "chat_id_list": []any{r.lisGroups()[0], r.lisGroups()[1]}, "sender": "li",
				"text": map[string]any{"content": dayText}}
			if d := cmp.Diff(want, body); d != "" {
				t.Errorf("li's add_msg_template (-want +got):\n%s", d)
			}
			if got := r.msgIDs(t, key); !slices.Equal(got, []string{li[0].MsgID, li[0].MsgID}) {
				t.Errorf("msgids saved %v, want WeCom's %s for both groups", got, li[0].MsgID)
			}
			wantTasks := []groups.Task{{Owner: "li", ChatIDs: r.lisGroups(), MsgID: li[0].MsgID}}
			if d := cmp.Diff(wantTasks, tasks); d != "" {
				t.Errorf("tasks (-want +got):\n%s", d)
			}
		}

		t.Run("answer lost", func(t *testing.T) {
			r := newGroupRig(t, s)
			// WeCom creates the task, its answer is lost (an HTTP 502).
			r.fake.FailHTTPAfterNext(wecomfake.PathAddMsgTemplate, 1, 502)
			_, err := send(r, "k-lost", r.vip, r.news)
			if !errors.Is(err, adapters.ErrOutcomeUnknown) || !adapters.Retryable(err) {
				t.Fatalf("the send whose answer was lost = %v; want a retryable ErrOutcomeUnknown", err)
			}
			if got := r.msgIDs(t, "k-lost"); !slices.Equal(got, []string{"", ""}) {
				t.Fatalf("msgids after the lost answer: %v", got)
			}
			tasks, err := send(r, "k-lost", r.vip, r.news)
			if err != nil {
				t.Fatal(err)
			}
			wantOneTask(t, r, "k-lost", tasks)
			if n := r.fake.CallCount(wecomfake.PathGroupMsgListV2); n != 1 {
				t.Errorf("%d get_groupmsg_list_v2, want 1", n)
			}
			// Once more: sent, nothing asked or sent.
			if _, err := send(r, "k-lost", r.vip, r.news); err != nil || len(r.lisTasks()) != 1 || r.fake.CallCount(wecomfake.PathGroupMsgListV2) != 1 {
				t.Errorf("a third send: %v, %d tasks", err, len(r.lisTasks()))
			}
		})

		t.Run("died after WeCom took it", func(t *testing.T) {
			r := newGroupRig(t, s)
			// Tasks that are not this one: the same text through wang, and
			// another text through li.
			if _, err := send(r, "k-wang", r.other); err != nil {
				t.Fatal(err)
			}
			if _, err := r.wecom.SendToGroups(ctx, "li", []string{r.vip}, &adapters.Outbound{Kind: adapters.KindText, Text: "店庆预告"}); err != nil {
				t.Fatal(err)
			}
			// The process that died: reserved, attempted, its call went
			// through, its answer never saved.
			r.crashed(t, "k-died")
			rc, err := r.wecom.SendToGroups(ctx, "li", r.lisGroups(), dayMessage())
			if err != nil {
				t.Fatal(err)
			}
			tasks, err := send(r, "k-died", r.vip, r.news)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(r.lisTasks()); n != 2 {
				t.Fatalf("%d tasks for li, want the 2 made before the retry", n)
			}
			want := []groups.Task{{Owner: "li", ChatIDs: r.lisGroups(), MsgID: rc.ExternalID}}
			if d := cmp.Diff(want, tasks, cmp.Transformer("sort", func(ids []string) []string { return slices.Sorted(slices.Values(ids)) })); d != "" {
				t.Errorf("tasks (-want +got):\n%s", d)
			}
			if got := r.msgIDs(t, "k-died"); !slices.Equal(got, []string{rc.ExternalID, rc.ExternalID}) {
				t.Errorf("msgids saved %v, want %s", got, rc.ExternalID)
			}
		})

		t.Run("died before WeCom got it", func(t *testing.T) {
			r := newGroupRig(t, s)
			if _, err := send(r, "k-wang", r.other); err != nil {
				t.Fatal(err)
			}
			r.crashed(t, "k-never")
			tasks, err := send(r, "k-never", r.vip, r.news)
			if err != nil {
				t.Fatal(err)
			}
			wantOneTask(t, r, "k-never", tasks)
		})

		t.Run("WeCom cannot be asked", func(t *testing.T) {
			r := newGroupRig(t, s)
			r.crashed(t, "k-busy")
			r.fake.FailNext(wecomfake.PathGroupMsgListV2, 1, wecomfake.CodeSystemBusy, "")
			_, err := send(r, "k-busy", r.vip, r.news)
			if err == nil || errors.Is(err, adapters.ErrOutcomeUnknown) || !adapters.Retryable(err) {
				t.Fatalf("the send WeCom could not be asked about = %v; want a retryable error", err)
			}
			if n := r.fake.CallCount(wecomfake.PathAddMsgTemplate); n != 0 {
				t.Fatalf("%d add_msg_template while WeCom could not be asked", n)
			}
			// Still unconfirmed: the next retry asks again, then sends.
			for _, id := range r.lisGroups() {
				if rs, err := s.ReserveGroupSend(ctx, "wecom", id, today(), "k-busy"); err != nil || !rs.Unconfirmed() {
					t.Errorf("group %s after the failed ask: %+v, %v", id, rs, err)
				}
			}
			tasks, err := send(r, "k-busy", r.vip, r.news)
			if err != nil {
				t.Fatal(err)
			}
			wantOneTask(t, r, "k-busy", tasks)
			if n := r.fake.CallCount(wecomfake.PathGroupMsgListV2); n != 2 {
				t.Errorf("%d get_groupmsg_list_v2, want 2", n)
			}
		})

		t.Run("a group new since", func(t *testing.T) {
			// The first attempt sent to vip and lost the answer; by the
			// retry li has news as well: vip is found, news sent.
			r := newGroupRig(t, s)
			r.fake.FailHTTPAfterNext(wecomfake.PathAddMsgTemplate, 1, 502)
			if _, err := send(r, "k-new", r.vip); !errors.Is(err, adapters.ErrOutcomeUnknown) {
				t.Fatalf("first send = %v", err)
			}
			tasks, err := send(r, "k-new", r.vip, r.news)
			if err != nil {
				t.Fatal(err)
			}
			li := r.lisTasks()
			if len(li) != 2 || !slices.Equal(li[0].ChatIDs, []string{r.vip}) || !slices.Equal(li[1].ChatIDs, []string{r.news}) {
				t.Fatalf("%d tasks for li; want one to vip, then one to news", len(li))
			}
			byGroup := map[string]string{}
			for _, tk := range tasks {
				for _, id := range tk.ChatIDs {
					byGroup[id] = tk.MsgID
				}
			}
			if d := cmp.Diff(map[string]string{r.vip: li[0].MsgID, r.news: li[1].MsgID}, byGroup); d != "" {
				t.Errorf("tasks by group (-want +got):\n%s", d)
			}
		})

		t.Run("refused", func(t *testing.T) {
			// WeCom refused the call (an errcode): it did nothing, the
			// groups are free again, for any key.
			r := newGroupRig(t, s)
			r.fake.FailNext(wecomfake.PathAddMsgTemplate, 1, wecomfake.CodeSystemBusy, "")
			if _, err := send(r, "k-refused", r.vip); err == nil || errors.Is(err, adapters.ErrOutcomeUnknown) {
				t.Fatalf("refused send = %v", err)
			}
			if rs, err := s.ReserveGroupSend(ctx, "wecom", r.vip, today(), "k-other"); err != nil || rs != (store.GroupReservation{}) {
				t.Errorf("vip after the refusal, another key: %+v, %v; want a fresh reservation", rs, err)
			}
		})
	})
}

// TestGroupDeliveries: CheckDeliveries asks WeCom, on both databases,
// whether each owner sent their task (get_groupmsg_send_result by
// chat_id) and records it on the groups' sends: pending until li
// confirms, then delivered; wang's task refused by WeCom, failed; WeCom
// not answering changes nothing. A send again with the key tells which
// groups got it; a delivered send is not asked about again.
func TestGroupDeliveries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := newGroupRig(t, s)
		req := groups.SendRequest{Channel: "wecom", Brand: "acme", ChatIDs: []string{r.vip, r.news, r.other}, Message: dayMessage(), Key: "k-day"}
		if _, err := r.keeper.Send(ctx, req); err != nil {
			t.Fatal(err)
		}
		var li, wang string
		for _, tk := range r.fake.GroupMsgTemplates() {
			if tk.Sender == "li" {
				li = tk.MsgID
			} else {
				wang = tk.MsgID
			}
		}
		check := func(want int) {
			t.Helper()
			n, err := r.keeper.CheckDeliveries(ctx, 0)
			if err != nil || n != want {
				t.Fatalf("CheckDeliveries = %d, %v; want %d tasks checked", n, err, want)
			}
		}
		byMsg := func() map[string]groups.Task {
			t.Helper()
			tasks, err := r.keeper.Send(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]groups.Task{}
			for _, tk := range tasks {
				slices.Sort(tk.ChatIDs)
				out[tk.MsgID] = tk
			}
			return out
		}
		check(2)
		if got := byMsg(); len(got[li].Delivered)+len(got[li].Failed)+len(got[wang].Delivered)+len(got[wang].Failed) != 0 {
			t.Errorf("tasks before anyone confirmed: %+v", got)
		}
		// WeCom not answering: an error, the sends as they were.
		r.fake.FailNext(wecomfake.PathGroupMsgSendResult, 1, wecomfake.CodeSystemBusy, "")
		if n, err := r.keeper.CheckDeliveries(ctx, 0); err == nil || n != 1 {
			t.Errorf("CheckDeliveries with WeCom busy = %d, %v; want 1 task checked and an error", n, err)
		}
		r.fake.ConfirmMsgTemplate(li)
		r.fake.RefuseMsgTemplate(wang, 3)
		before := r.fake.CallCount(wecomfake.PathGroupMsgSendResult)
		check(2)
		if n := r.fake.CallCount(wecomfake.PathGroupMsgSendResult) - before; n != 2 {
			t.Errorf("%d get_groupmsg_send_result, want one per task", n)
		}
		want := map[string]groups.Task{
			li:   {Owner: "li", ChatIDs: r.lisGroups(), MsgID: li, Delivered: r.lisGroups()},
			wang: {Owner: "wang", ChatIDs: []string{r.other}, MsgID: wang, Failed: []string{r.other}},
		}
		got := byMsg()
		for _, tk := range got {
			slices.Sort(tk.Delivered)
		}
		if d := cmp.Diff(want, got, cmp.Transformer("sort", func(ids []string) []string { return slices.Sorted(slices.Values(ids)) })); d != "" {
			t.Errorf("tasks once checked (-want +got):\n%s", d)
		}
		check(0)
	})
}
