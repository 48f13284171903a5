package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// customer is a contact who can see a moment campaign's post, as GET
// /moments/{id} lists them.
type customer struct {
	Guide      string `json:"guide"`
	ExternalID string `json:"external_userid"`
	MemberID   *int64 `json:"member_id"`
}

// TestWeComMomentCampaignWithRedis is the journey for moment
// tasks: a brand asks a store's guides to post a link on their Moments
// (add_moment_task asserted); the poller reads the job until it is done,
// then, on its hourly schedule, who posted (get_moment_task) and which
// customers can see each post (get_moment_customer_list), matched to
// members; after the follow period it reads no more.
// The same key again is the same campaign; a kind Moments cannot carry
// is refused before WeCom is asked.
func TestWeComMomentCampaignWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	if code, body := request(t, "POST", s.base+"/api/v1/guides", tok, `{"id":"g-wang","store_id":"sh-1","name":"王强","wecom_userid":"wang"}`); code != 201 {
		t.Fatalf("guide: %d %s", code, body)
	}
	fake.AddEmployees("wang")
	req := `{"brand":"acme","store_id":"sh-1","kind":"news","text":"春季新品到店，欢迎来试","fields":{"title":"春季新品","url":"https://acme.example/spring"},"key":"spring-1"}`
	code, body := request(t, "POST", s.base+"/api/v1/moments", tok, req)
	if code != 201 {
		t.Fatalf("POST /moments: %d %s", code, body)
	}
	var m struct {
		ID      int64
		State   string
		Asked   int
		Posted  int
		Senders []string
		Posts   []struct {
			Guide  string
			Posted bool
		}
		MomentID  string     `json:"moment_id"`
		Reached   int        `json:"reached"`
		PolledAt  *time.Time `json:"polled_at"`
		Customers []customer `json:"customers"`
	}
	json.Unmarshal([]byte(body), &m)
	if m.State != "creating" || m.Asked != 2 {
		t.Errorf("campaign = %s", body)
	}
	tasks := fake.MomentTasks()
	if len(tasks) != 1 {
		t.Fatalf("%d moment tasks", len(tasks))
	}
	var sent map[string]any
	json.Unmarshal(tasks[0].Body, &sent)
	want := map[string]any{
		"text":          map[string]any{"content": "春季新品到店，欢迎来试"},
		"attachments":   []any{map[string]any{"msgtype": "link", "link": map[string]any{"title": "春季新品", "url": "https://acme.example/spring"}}},
		"visible_range": map[string]any{"sender_list": map[string]any{"user_list": []any{"li", "wang"}}},
	}
	if d := cmp.Diff(want, sent); d != "" {
		t.Errorf("add_moment_task (-want +got):\n%s", d)
	}
	url := fmt.Sprintf("%s/api/v1/moments/%d", s.base, m.ID)
	// The poller reads the campaign on its schedule, with its own clock.
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	s.app.moments.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	poll := func() {
		t.Helper()
		if err := s.app.pollMoments(ctx, "test"); err != nil {
			t.Fatal(err)
		}
	}
	read := func() {
		t.Helper()
		code, body = request(t, "GET", url, tok, "")
		if code != 200 {
			t.Fatalf("GET moment: %d %s", code, body)
		}
		json.Unmarshal([]byte(body), &m)
	}
	// The job is still running at the first reading, done at the second.
	poll()
	read()
	if m.State != "creating" || m.PolledAt == nil {
		t.Fatalf("after the first reading: %s", body)
	}
	poll()
	read()
	if m.State != "created" || m.MomentID == "" || m.Posted != 0 || len(m.Posts) != 2 {
		t.Fatalf("after the job: %s", body)
	}
	// Li's post is seen by chen (a member), wang's by two customers.
	chen := joinWeComMember(t, s, fake, "wmChen", "陈女士")
	for _, id := range []string{"wmSun", "wmZhou"} {
		fake.AddContact(wecomfake.Contact{ExternalUserID: id, FollowUsers: []wecom.FollowUser{{UserID: "wang"}}})
	}
	if !fake.PostMoment(m.MomentID, "wang") || !fake.PostMoment(m.MomentID, "li") {
		t.Fatal("fake does not know the moment")
	}
	// Nothing is due before the hour: no WeCom call.
	calls := len(fake.Calls())
	poll()
	if n := len(fake.Calls()); n != calls {
		t.Errorf("a reading before it was due made %d WeCom calls", n-calls)
	}
	advance(time.Hour + time.Second)
	poll()
	read()
	if m.Posted != 2 || m.Reached != 3 || !strings.Contains(body, `{"guide":"wang","posted":true,"customers":2}`) {
		t.Errorf("after the posts: %s", body)
	}
	chenID := chen.ID
	wantCustomers := []customer{{Guide: "li", ExternalID: "wmChen", MemberID: &chenID}, {Guide: "wang", ExternalID: "wmSun"}, {Guide: "wang", ExternalID: "wmZhou"}}
	if d := cmp.Diff(wantCustomers, m.Customers); d != "" {
		t.Errorf("customers (-want +got):\n%s", d)
	}
	var asked []string
	for _, c := range fake.Calls()[calls:] {
		asked = append(asked, c.Path)
	}
	if want := []string{wecomfake.PathGetMomentTask, wecomfake.PathGetMomentCustomerList, wecomfake.PathGetMomentCustomerList}; !slices.Equal(asked, want) {
		t.Errorf("WeCom calls of the reading = %v, want %v", asked, want)
	}
	// After the follow period (7 days) the campaign is read no more.
	advance(7 * 24 * time.Hour)
	calls = len(fake.Calls())
	poll()
	if n := len(fake.Calls()); n != calls {
		t.Errorf("a reading after the follow period made %d WeCom calls", n-calls)
	}

	if code, body := request(t, "POST", s.base+"/api/v1/moments", tok, req); code != 201 || !strings.Contains(body, fmt.Sprintf(`"id":%d`, m.ID)) {
		t.Errorf("the same key again: %d %s", code, body)
	}
	calls = len(fake.Calls())
	code, body = request(t, "POST", s.base+"/api/v1/moments", tok, `{"brand":"acme","store_id":"sh-1","kind":"miniprogram","fields":{"title":"x"},"key":"spring-2"}`)
	if code != 400 || !strings.Contains(body, "cannot be posted on Moments") {
		t.Errorf("a miniprogram on Moments: %d %s", code, body)
	}
	if n := len(fake.MomentTasks()); n != 1 {
		t.Errorf("%d moment tasks after the refused one", n)
	}
	if n := len(fake.Calls()); n != calls {
		t.Errorf("a refused campaign made %d WeCom calls", n-calls)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/moments?brand=acme", tok, ""); code != 200 || strings.Count(body, `"key":`) != 1 {
		t.Errorf("campaigns after the refused one: %d %s", code, body)
	}
}
