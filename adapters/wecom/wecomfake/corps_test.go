package wecomfake_test

import (
	"net/url"
	"testing"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestCorpsKeepCorpsApart: two corps at one URL each issue their own
// tokens and know only their own customers and welcome codes; a token of
// one used for the other's customer fails as at WeCom.
func TestCorpsKeepCorpsApart(t *testing.T) {
	a := wecomfake.New(t)
	b := wecomfake.New(t, wecomfake.WithCorpID("wwCorpB"), wecomfake.WithSecrets("b-secret", "b-secret"))
	corps := wecomfake.NewCorps(t, a, b)
	b.AddContact(wecomfake.Contact{ExternalUserID: "wmB", Name: "B", FollowUsers: []wecom.FollowUser{{UserID: "zhang"}}})
	codeB := b.IssueWelcomeCode("wmB")
	tok := func(corp, secret string) string {
		t.Helper()
		ans := get(t, corps.URL()+wecomfake.PathGetToken+"?corpid="+corp+"&corpsecret="+url.QueryEscape(secret))
		if ans.Errcode != 0 || ans.AccessToken == "" {
			t.Fatalf("gettoken of %s: %+v", corp, ans)
		}
		return ans.AccessToken
	}
	tokA, tokB := tok(a.CorpID(), a.ContactSecret()), tok("wwCorpB", "b-secret")
	if ans := get(t, corps.URL()+wecomfake.PathGetToken+"?corpid=wwNobody&corpsecret=x"); ans.Errcode != wecomfake.CodeInvalidCorpID {
		t.Errorf("gettoken of an unknown corp: %+v, want 40013", ans)
	}
	contact := func(tok string) int {
		return get(t, corps.URL()+wecomfake.PathExternalContactGet+"?access_token="+url.QueryEscape(tok)+"&external_userid=wmB").Errcode
	}
	if code := contact(tokB); code != 0 {
		t.Errorf("corp B's customer with B's token: errcode %d", code)
	}
	if code := contact(tokA); code != wecomfake.CodeNotExternalContact {
		t.Errorf("corp B's customer with A's token: errcode %d, want %d", code, wecomfake.CodeNotExternalContact)
	}
	if code := contact("not-a-token"); code != wecomfake.CodeInvalidToken {
		t.Errorf("an unknown token: errcode %d, want 40014", code)
	}
	welcome := `{"welcome_code":"` + codeB + `","text":{"content":"hi"}}`
	if ans := post(t, corps.URL()+wecomfake.PathSendWelcomeMsg+"?access_token="+url.QueryEscape(tokA), welcome); ans.Errcode != wecomfake.CodeInvalidWelcomeCode {
		t.Errorf("B's welcome code with A's token: %+v, want 41050", ans)
	}
	if ans := post(t, corps.URL()+wecomfake.PathSendWelcomeMsg+"?access_token="+url.QueryEscape(tokB), welcome); ans.Errcode != 0 {
		t.Errorf("B's welcome code with B's token: %+v", ans)
	}
	if len(a.Welcomes()) != 0 || len(b.Welcomes()) != 1 {
		t.Errorf("welcomes: A %d, B %d; want 0 and 1", len(a.Welcomes()), len(b.Welcomes()))
	}
}
