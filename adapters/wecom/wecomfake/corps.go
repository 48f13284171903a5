package wecomfake

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Corps serves the fakes of several corps at one URL, as WeCom serves
// every corp at qyapi.weixin.qq.com (and a gateway's WeCom instances
// share one api_base). gettoken goes to the corp its corpid names; every
// other call goes to the corp that issued the access_token it carries.
// Each corp keeps its own employees, contacts, welcome codes and message
// tasks, so that a call with corp A's token about corp B's customer, or
// with B's welcome code, fails as it does at WeCom (A does not know
// them), and each corp's Calls are its own.
type Corps struct {
	srv   *httptest.Server
	corps []*Server
}

// NewCorps serves corps (each made with New and its own WithCorpID and
// secrets) at one URL. If tb is not nil, it is closed when the test ends.
func NewCorps(tb testing.TB, corps ...*Server) *Corps {
	c := &Corps{corps: corps}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	if tb != nil {
		tb.Cleanup(c.srv.Close)
	}
	return c
}

// URL is the base URL standing in for https://qyapi.weixin.qq.com for
// every corp.
func (c *Corps) URL() string { return c.srv.URL }

// Config is s.Config() with APIBase pointing at the shared URL.
func (c *Corps) Config(s *Server) wecom.Config {
	cfg := s.Config()
	cfg.APIBase = c.URL()
	return cfg
}

func (c *Corps) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.URL.Path == PathGetToken {
		for _, s := range c.corps {
			if s.corpID == q.Get("corpid") {
				s.handler.ServeHTTP(w, r)
				return
			}
		}
		writeJSON(w, map[string]any{"errcode": CodeInvalidCorpID, "errmsg": "invalid corpid"})
		return
	}
	tok := q.Get("access_token")
	if tok == "" {
		writeJSON(w, map[string]any{"errcode": CodeTokenMissing, "errmsg": "access_token missing"})
		return
	}
	for _, s := range c.corps {
		if s.issued(tok) {
			s.handler.ServeHTTP(w, r)
			return
		}
	}
	writeJSON(w, map[string]any{"errcode": CodeInvalidToken, "errmsg": "invalid access_token"})
}

// issued reports whether s issued tok.
func (s *Server) issued(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tokens[tok]
	return ok
}
