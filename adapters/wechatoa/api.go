package wechatoa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// apiError is WeChat's error answer.
type apiError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Error codes with a meaning of their own.
const (
	codeSystemBusy       = -1
	codeInvalidToken     = 40001
	codeInvalidOpenID    = 40003
	codeInvalidMediaID   = 40007
	codeTokenExpiredAlt  = 40014
	codeInvalidTemplate  = 40037
	codeTokenExpired     = 42001
	codeNotFollowing     = 43004
	codeRateLimited      = 45009
	codeMinuteLimited    = 45011
	codeWindowClosed     = 45015
	codeCSMessageLimited = 45047
	codeDataFormat       = 47001
)

// kindOf maps an errcode onto the common sentinel errors.
func kindOf(code int) error {
	switch code {
	case codeSystemBusy:
		return adapters.ErrTemporary
	case codeInvalidToken, codeTokenExpiredAlt, codeTokenExpired, 40013, 40125, 40164:
		return adapters.ErrUnauthorized
	case codeRateLimited, codeMinuteLimited:
		return adapters.ErrRateLimited
	case codeNotFollowing, codeWindowClosed, codeInvalidOpenID, codeCSMessageLimited:
		// Not following, outside the 48-hour window, or sent 20
		// messages without an answer: only the member can change that.
		return adapters.ErrInvalidRecipient
	case codeInvalidMediaID, codeInvalidTemplate, codeDataFormat, 44002, 45002, 45003:
		return adapters.ErrInvalidMessage
	}
	return nil
}

// errOf is what an answer carries of an error (every answer embeds
// apiError).
func (e apiError) errOf() apiError { return e }

type answer interface{ errOf() apiError }

func (c *Client) apiErr(e apiError) error {
	return &adapters.APIError{Channel: c.key, Code: e.ErrCode, Message: e.ErrMsg, Kind: kindOf(e.ErrCode)}
}

// tokenKey is the account's access token in the shared cache.
func (c *Client) tokenKey() string { return "wechat_oa:" + c.cfg.AppID }

// token returns the account's access token: from the cache the replicas
// share, else fetched (cgi-bin/token) and cached until shortly before it
// expires.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.tokens != nil {
		if t, err := c.tokens.Get(ctx, c.tokenKey()); err == nil && t != "" {
			return t, nil
		}
	}
	q := url.Values{"grant_type": {"client_credential"}, "appid": {c.cfg.AppID}, "secret": {c.cfg.AppSecret}}
	var out struct {
		apiError
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := c.do(ctx, http.MethodGet, "/cgi-bin/token?"+q.Encode(), nil, &out); err != nil {
		return "", fmt.Errorf("getting access token: %w", err)
	}
	if out.ErrCode != 0 || out.AccessToken == "" {
		return "", fmt.Errorf("getting access token: %w", c.apiErr(out.apiError))
	}
	if c.tokens != nil {
		ttl := time.Duration(out.ExpiresIn)*time.Second - 5*time.Minute
		if err := c.tokens.Set(ctx, c.tokenKey(), out.AccessToken, ttl); err != nil {
			c.log.Warn("caching access token", slog.Any("error", err))
		}
	}
	return out.AccessToken, nil
}

// call makes an API call with the access token (POST with a JSON body
// or a *form, or GET when body is nil) and decodes the answer into out, which embeds
// apiError. A refused token is dropped and the call made once more with
// a fresh one.
func (c *Client) call(ctx context.Context, path string, query url.Values, body any, out answer) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx)
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("access_token", tok)
		method := http.MethodPost
		if body == nil {
			method = http.MethodGet
		}
		if err := c.do(ctx, method, path+"?"+q.Encode(), body, out); err != nil {
			return err
		}
		e := out.errOf()
		if e.ErrCode == 0 {
			return nil
		}
		if errors.Is(kindOf(e.ErrCode), adapters.ErrUnauthorized) && attempt == 0 && c.tokens != nil {
			if err := c.tokens.Delete(ctx, c.tokenKey()); err != nil {
				return err
			}
			continue
		}
		return c.apiErr(e)
	}
}

// do sends one HTTP request to the API and decodes its JSON answer.
func (c *Client) do(ctx context.Context, method, pathQuery string, body, out any) error {
	var (
		rd     io.Reader
		ctype  string
		client = c.http
	)
	switch b := body.(type) {
	case nil:
	case *form:
		rd, ctype, client = bytes.NewReader(b.data), b.contentType, c.upload
	default:
		data, err := adapters.MarshalBody(body)
		if err != nil {
			return err
		}
		rd, ctype = bytes.NewReader(data), "application/json; charset=utf-8"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.APIBase+pathQuery, rd)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL carries the access token (or the app secret): the
		// error names the path alone.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("calling wechat %s: %w: %w", req.URL.Path, err, adapters.ErrTemporary)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading wechat's answer: %w: %w", err, adapters.ErrTemporary)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("wechat answered %d: %w", resp.StatusCode, adapters.ErrTemporary)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding wechat's answer: %w: %w", err, adapters.ErrTemporary)
	}
	return nil
}
