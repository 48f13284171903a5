package wecomfake_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// tokens is the simplest adapters.TokenCache: a map.
type tokens struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *tokens) Get(_ context.Context, k string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k], nil
}

func (c *tokens) Set(_ context.Context, k, v string, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
	return nil
}

func (c *tokens) Delete(_ context.Context, k string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
	return nil
}

// The API talks to the fake as to WeCom: a new customer's details, then
// their welcome message with the code of their add_external_contact event.
func ExampleServer() {
	fake := wecomfake.New(nil)
	defer fake.Close()
	fake.AddContact(wecom.Contact{
		ExternalUserID: "wmMember0001",
		Name:           "王小明",
		FollowUsers:    []wecom.FollowUser{{UserID: "guide01", State: "store-0451"}},
	})
	api, err := wecom.NewAPI(fake.Config(), &tokens{m: map[string]string{}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	c, err := api.ExternalContact(ctx, "wmMember0001")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Name, c.FollowUsers[0].State)

	code := fake.IssueWelcomeCode("wmMember0001")
	fmt.Println(api.SendWelcome(ctx, code, "欢迎光临"))
	fmt.Println(fake.Welcomes()[0].ExternalUserID, fake.Welcomes()[0].Text)
	err = api.SendWelcome(ctx, code, "again")
	fmt.Println(wecom.WelcomeAlreadySent(err), errors.Is(err, adapters.ErrInvalidRecipient))
	// Output:
	// 王小明 store-0451
	// <nil>
	// wmMember0001 欢迎光临
	// true true
}

// A callback of a new customer, sealed as WeCom sends it.
func ExampleCallback() {
	var got string
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.Path
		fmt.Fprint(w, "success")
	}))
	defer gateway.Close()

	event := wecomfake.AddExternalContact("guide01", "wmMember0001", "store-0451", "WELCOMECODE")
	req, err := wecomfake.Callback{}.Request(gateway.URL+"/callbacks/wecom", event.XML())
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(got, resp.StatusCode)
	// Output: POST /callbacks/wecom 200
}
