package wecomfake_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestGroupMsgListRefusals: get_groupmsg_list_v2 refuses what WeCom's
// document does not allow (a range over a month, an end before the start,
// a bad filter type or chat type, missing times; 40058, the fake's choice
// of code) and a bad cursor (50100), and answers a month without tasks
// with an empty list.
func TestGroupMsgListRefusals(t *testing.T) {
	f := wecomfake.New(t)
	u := f.URL() + wecomfake.PathGroupMsgListV2 + "?access_token=" + url.QueryEscape(token(t, f, f.ContactSecret()))
	now := time.Now().Unix()
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"over a month", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d}`, now-32*86400, now), wecomfake.CodeInvalidParameter},
		{"end before start", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d}`, now, now-60), wecomfake.CodeInvalidParameter},
		{"no times", `{"chat_type":"single"}`, wecomfake.CodeInvalidParameter},
		{"bad filter", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"filter_type":3}`, now-60, now), wecomfake.CodeInvalidParameter},
		{"bad chat type", fmt.Sprintf(`{"chat_type":"pair","start_time":%d,"end_time":%d}`, now-60, now), wecomfake.CodeInvalidParameter},
		{"bad cursor", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"cursor":"nope"}`, now-60, now), wecomfake.CodeInvalidCursor},
		{"unknown field", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"sender":"li"}`, now-60, now), wecomfake.CodeInvalidParameter},
		{"a month, empty", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d,"filter_type":0,"limit":100}`, now-31*86400, now), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := post(t, u, tc.body); a.Errcode != tc.code {
				t.Errorf("errcode = %d (%s), want %d", a.Errcode, a.Errmsg, tc.code)
			}
		})
	}
}

// postMap posts body to u and decodes the answer.
func postMap(t *testing.T, u, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out["errcode"] != float64(0) {
		t.Fatalf("%s: %v", body, out)
	}
	return out
}

// TestGroupMsgListGroups: get_groupmsg_list_v2 with chat_type group
// lists the tasks to customer groups (not those to customers), by
// create time, creator (the sender) and pages of limit; each task's
// get_groupmsg_send_result lists its groups by chat_id, pending until
// the owner confirms.
func TestGroupMsgListGroups(t *testing.T) {
	var clock atomic.Int64 // the fake's time, in Unix seconds
	clock.Store(1_790_000_000)
	f := wecomfake.New(t, wecomfake.WithClock(func() time.Time { return time.Unix(clock.Load(), 0) }))
	f.AddEmployees("li", "wang")
	vip, news, other := f.CreateGroup("li", "VIP", "wmA"), f.CreateGroup("li", "新品", "wmB"), f.CreateGroup("wang", "王", "wmC")
	tok := "?access_token=" + url.QueryEscape(token(t, f, f.ContactSecret()))
	task := func(sender, text string, chats ...string) string {
		ids, _ := json.Marshal(chats)
		a := postMap(t, f.URL()+wecomfake.PathAddMsgTemplate+tok,
			fmt.Sprintf(`{"chat_type":"group","sender":%q,"chat_id_list":%s,"text":{"content":%q}}`, sender, ids, text))
		return a["msgid"].(string)
	}
	t0 := clock.Load()
	first := task("li", "会员日", vip, news)
	clock.Add(600)
	second := task("wang", "会员日", other)
	clock.Add(600)
	third := task("li", "店庆", vip)

	list := func(body string) (ids []string, texts []string, next string) {
		a := postMap(t, f.URL()+wecomfake.PathGroupMsgListV2+tok, body)
		for _, e := range a["group_msg_list"].([]any) {
			m := e.(map[string]any)
			if m["create_type"] != float64(0) || m["creator"] != nil {
				t.Errorf("task %v: an API task is the corp's, without creator", m)
			}
			ids = append(ids, m["msgid"].(string))
			texts = append(texts, m["text"].(map[string]any)["content"].(string))
		}
		return ids, texts, a["next_cursor"].(string)
	}
	end := clock.Load()
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"all", fmt.Sprintf(`{"chat_type":"group","start_time":%d,"end_time":%d,"filter_type":0}`, t0, end), []string{first, second, third}},
		{"creator", fmt.Sprintf(`{"chat_type":"group","start_time":%d,"end_time":%d,"creator":"li"}`, t0, end), []string{first, third}},
		{"from the second", fmt.Sprintf(`{"chat_type":"group","start_time":%d,"end_time":%d}`, t0+60, end), []string{second, third}},
		{"by employees", fmt.Sprintf(`{"chat_type":"group","start_time":%d,"end_time":%d,"filter_type":1}`, t0, end), nil},
		{"to customers", fmt.Sprintf(`{"chat_type":"single","start_time":%d,"end_time":%d}`, t0, end), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, next := list(tc.body)
			if !slices.Equal(got, tc.want) || next != "" {
				t.Errorf("tasks %v (next %q), want %v", got, next, tc.want)
			}
		})
	}
	// Pages of two.
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		ids, texts, next := list(fmt.Sprintf(`{"chat_type":"group","start_time":%d,"end_time":%d,"limit":2,"cursor":%q}`, t0, end, cursor))
		if page == 0 && (len(ids) != 2 || texts[0] != "会员日" || next == "") {
			t.Fatalf("first page %v %v, next %q", ids, texts, next)
		}
		got = append(got, ids...)
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, []string{first, second, third}) {
		t.Errorf("paged tasks %v", got)
	}

	results := func() []any {
		a := postMap(t, f.URL()+wecomfake.PathGroupMsgSendResult+tok, fmt.Sprintf(`{"msgid":%q,"userid":"li"}`, first))
		return a["send_list"].([]any)
	}
	want := []any{
		map[string]any{"chat_id": vip, "userid": "li", "status": float64(0)},
		map[string]any{"chat_id": news, "userid": "li", "status": float64(0)},
	}
	if d := cmp.Diff(want, results()); d != "" {
		t.Errorf("send results before confirming (-want +got):\n%s", d)
	}
	f.ConfirmMsgTemplate(first)
	for _, w := range want {
		w.(map[string]any)["status"] = float64(1)
		w.(map[string]any)["send_time"] = float64(clock.Load())
	}
	if d := cmp.Diff(want, results()); d != "" {
		t.Errorf("send results once confirmed (-want +got):\n%s", d)
	}
}
