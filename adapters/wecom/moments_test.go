package wecom_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestMomentCustomersPages: the customers who can see a guide's post
// come from get_moment_customer_list page after page (1000 a page, by
// next_cursor) until the last; a guide who did not post has none; no
// guide is refused before WeCom is asked.
func TestMomentCustomersPages(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li", "wang")
	var want []string
	for i := range 1001 {
		id := fmt.Sprintf("wm%05d", i)
		want = append(want, id)
		fake.AddContact(wecomfake.Contact{ExternalUserID: id, FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	}
	cfg := fake.Config()
	cfg.Brand = "acme"
	c, err := wecom.New(cfg, wecom.Deps{Recorder: &recorded{}, Tokens: newMemTokens(), Cursors: nopCursors{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	job, err := c.CreateMoment(ctx, []string{"li", "wang"}, &adapters.Outbound{Kind: adapters.KindText, Text: "春季新品"})
	if err != nil {
		t.Fatal(err)
	}
	var j *adapters.MomentJob
	for range 2 { // running at the first read
		if j, err = c.MomentJob(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	if !j.Done || j.ID == "" || !fake.PostMoment(j.ID, "li") {
		t.Fatalf("job = %+v", j)
	}
	got, err := c.MomentCustomers(ctx, j.ID, "li")
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("li's customers: %d of %d, %v", len(got), len(want), err)
	}
	pages := 0
	for _, call := range fake.Calls() {
		if call.Path == wecomfake.PathGetMomentCustomerList {
			pages++
		}
	}
	if pages != 2 {
		t.Errorf("%d pages read, want 2", pages)
	}
	if got, err := c.MomentCustomers(ctx, j.ID, "wang"); err != nil || len(got) != 0 {
		t.Errorf("wang, who did not post: %v, %v", got, err)
	}
	if _, err := c.MomentCustomers(ctx, j.ID, ""); !errors.Is(err, adapters.ErrInvalidRecipient) {
		t.Errorf("no guide: %v", err)
	}
}
