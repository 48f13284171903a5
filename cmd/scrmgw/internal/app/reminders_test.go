package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/gateway/queue"
)

// TestWeComTaskRemindersWithRedis: tasks given through the API, due in a
// few seconds, remind guide 李娜 on WeCom (app messages) before due and at
// due, once each however often the sweep runs; the one she completes in
// between gets no at-due reminder; 王强, whose store is closed now, gets
// nothing yet. Her "我的任务" lists the overdue task first, and the API
// counts open, overdue and done tasks per guide.
func TestWeComTaskRemindersWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	sh, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now().In(sh)
	closedHours := now.Add(3*time.Hour).Format("15:04") + "-" + now.Add(4*time.Hour).Format("15:04")
	for _, req := range []struct{ path, body string }{
		{"/api/v1/stores", `{"id":"sh-2","name":"徐汇店","brands":["acme"],"lat":31.19,"lng":121.43,"time_zone":"Asia/Shanghai","opening_hours":"` + closedHours + `"}`},
		{"/api/v1/guides", `{"id":"g-wang","store_id":"sh-2","name":"王强","wecom_userid":"wang"}`},
		{"/api/v1/members", `{"phone":"13800138000","name":"陈女士","brand":"acme"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	fake.AddEmployees("wang")
	_, body := request(t, "GET", s.base+"/api/v1/members?phone=13800138000", tok, "")
	var member struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &member); err != nil || member.ID == 0 {
		t.Fatalf("member: %s", body)
	}
	give := func(guide, title string, due time.Time) string {
		t.Helper()
		code, body := request(t, "POST", s.base+"/api/v1/guide-tasks", tok, fmt.Sprintf(`{"guide_id":%q,"member_id":%d,"brand":"acme","title":%q,"due_at":%q}`,
			guide, member.ID, title, due.Format(time.RFC3339)))
		var task struct{ ID int64 }
		if err := json.Unmarshal([]byte(body), &task); code != 201 || err != nil {
			t.Fatalf("giving %s: %d %s", title, code, body)
		}
		return strconv.FormatInt(task.ID, 10)
	}
	due := time.Now().Add(8 * time.Second).Truncate(time.Second)
	later := give("g-li", "月底回访", time.Now().Add(24*time.Hour))
	soon := give("g-li", "回访陈女士", due)
	other := give("g-li", "电话确认到店", due)
	give("g-wang", "闭店时段的任务", due)

	sweep := func() {
		t.Helper()
		for range 2 {
			if _, err := s.app.Queue.Enqueue(asynq.NewTask(TypeTaskReminders, nil), asynq.Queue(queue.Low)); err != nil {
				t.Fatal(err)
			}
		}
	}
	agent, _ := strconv.Atoi(fake.AgentID())
	// sent checks the app messages from the n-th on went to li as text
	// from the app, and returns their contents in order.
	sent := func(from int) []string {
		t.Helper()
		var out []string
		for _, m := range fake.AppMessages()[from-1:] {
			if !slices.Equal(m.ToUser, []string{"li"}) || m.MsgType != "text" || m.AgentID != agent {
				t.Errorf("app message to %v, msgtype %s, agent %d; want text to li from agent %d: %s", m.ToUser, m.MsgType, m.AgentID, agent, m.Body)
			}
			out = append(out, m.Content)
		}
		return out
	}

	sweep()
	waitFor(t, "two before-due reminders", func() bool { return len(fake.AppMessages()) >= 2 })
	got := sent(1)
	slices.Sort(got)
	want := []string{
		"任务提醒：#" + soon + " 回访陈女士（会员 陈女士），将于 " + due.In(sh).Format("01-02 15:04") + " 到期。\n完成后发送“完成 " + soon + "”。",
		"任务提醒：#" + other + " 电话确认到店（会员 陈女士），将于 " + due.In(sh).Format("01-02 15:04") + " 到期。\n完成后发送“完成 " + other + "”。",
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("before-due reminders (-want +got):\n%s", diff)
	}

	guideSay(t, s, fake, "完成 "+other)
	waitApp(t, fake, 3, "已完成 #"+other+" 电话确认到店")

	time.Sleep(time.Until(due) + 300*time.Millisecond)
	sweep()
	waitApp(t, fake, 4, "任务已逾期：#"+soon+" 回访陈女士（会员 陈女士）")
	sweep()
	time.Sleep(1500 * time.Millisecond)
	if n := len(fake.AppMessages()); n != 4 {
		t.Errorf("%d app messages, want 4 (two before due, the done reply, one at due): %q", n, sent(1))
	}
	sent(1) // all to li: none to wang, whose store is closed

	guideSay(t, s, fake, "我的任务")
	list := waitApp(t, fake, 5, "您的待办任务").Content
	first, second := strings.Index(list, "#"+soon+" 【已逾期】回访陈女士"), strings.Index(list, "#"+later+" 月底回访")
	if first < 0 || second < 0 || first > second || strings.Contains(list, "电话确认到店") {
		t.Errorf("my tasks, the overdue one first and marked, the done one gone:\n%s", list)
	}

	counts := func(query string) string {
		t.Helper()
		code, body := request(t, "GET", s.base+"/api/v1/guide-tasks?"+query, tok, "")
		if code != 200 {
			t.Fatalf("counts %s: %d %s", query, code, body)
		}
		var out struct{ Items []map[string]any }
		json.Unmarshal([]byte(body), &out)
		var b strings.Builder
		for _, it := range out.Items {
			fmt.Fprintf(&b, "%v %v/%v/%v;", it["guide_id"], it["open"], it["overdue"], it["done"])
		}
		return b.String()
	}
	if got := counts("store_id=sh-1"); got != "g-li 1/1/1;" {
		t.Errorf("sh-1 counts (guide open/overdue/done) = %s", got)
	}
	if got := counts("store_id=sh-2&status=overdue"); got != "g-wang 0/1/0;" {
		t.Errorf("sh-2 overdue counts = %s", got)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/guide-tasks?store_id=sh-1&status=late", tok, ""); code != 400 ||
		!strings.Contains(body, `status: want open, overdue or done, got \"late\"`) {
		t.Errorf("bad status: %d %s", code, body)
	}
}

// TestDingTalkTaskReminderWithRedis: a DingTalk guide's task due within
// tasks.remind_before is reminded once, as a robot message to her staff
// id, however often the sweep runs.
func TestDingTalkTaskReminderWithRedis(t *testing.T) {
	r := handoffDingTalk(t, 30*time.Minute)
	member, err := r.s.app.Store.MemberByIdentity(context.Background(), "dingtalk", dingTalkMember)
	if err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(time.Hour)
	code, body := request(t, "POST", r.s.base+"/api/v1/guide-tasks", r.s.app.Config.AdminToken,
		fmt.Sprintf(`{"guide_id":"g-wu","member_id":%d,"brand":"acme","title":"回访周先生","due_at":%q}`, member.ID, due.Format(time.RFC3339)))
	var task struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &task); code != 201 || err != nil {
		t.Fatalf("giving the task: %d %s", code, body)
	}
	for range 3 {
		if _, err := r.s.app.Queue.Enqueue(asynq.NewTask(TypeTaskReminders, nil), asynq.Queue(queue.Low)); err != nil {
			t.Fatal(err)
		}
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	id := strconv.FormatInt(task.ID, 10)
	r.proactive(t, 1, "任务提醒：#"+id+" 回访周先生（会员 周先生），将于 "+due.In(sh).Format("01-02 15:04")+" 到期。")
	time.Sleep(1500 * time.Millisecond)
	if n := len(r.openapi.Sent()); n != 1 {
		t.Errorf("%d robot messages, want the one reminder", n)
	}
}
