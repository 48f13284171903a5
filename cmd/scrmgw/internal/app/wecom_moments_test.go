package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWeComMomentCampaignWithRedis is the journey for moment
// tasks: a brand asks a store's guides to post a link on their Moments
// (add_moment_task asserted); the task is created in the background
// (the job read until done); a guide posts and the campaign counts it.
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
		MomentID string `json:"moment_id"`
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
	// The job is still running at the first read, done at the second.
	for i := 0; i < 2; i++ {
		code, body = request(t, "GET", url, tok, "")
		if code != 200 {
			t.Fatalf("GET moment: %d %s", code, body)
		}
	}
	json.Unmarshal([]byte(body), &m)
	if m.State != "created" || m.MomentID == "" || m.Posted != 0 || len(m.Posts) != 2 {
		t.Fatalf("after the job: %s", body)
	}
	if !fake.PostMoment(m.MomentID, "wang") {
		t.Fatal("fake does not know the moment")
	}
	code, body = request(t, "GET", url, tok, "")
	json.Unmarshal([]byte(body), &m)
	if code != 200 || m.Posted != 1 || !strings.Contains(body, `{"guide":"wang","posted":true}`) {
		t.Errorf("after wang posted: %d %s", code, body)
	}

	if code, body := request(t, "POST", s.base+"/api/v1/moments", tok, req); code != 201 || !strings.Contains(body, fmt.Sprintf(`"id":%d`, m.ID)) {
		t.Errorf("the same key again: %d %s", code, body)
	}
	calls := len(fake.Calls())
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
