package dingtalk

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

const (
	pathAccessToken = "/v1.0/oauth2/accessToken"
	// tokenMargin is how long before its expiry a token is dropped from
	// the cache, so that it is refreshed before DingTalk refuses it.
	tokenMargin = 5 * time.Minute
)

// tokenKey is the TokenCache key of the app's access token.
func (c *Client) tokenKey() string { return "dingtalk:token:" + c.cfg.ClientID }

// accessToken returns the app's OpenAPI access token, from the cache or
// fresh from DingTalk. A cache that fails is logged and bypassed: sending
// goes on, at the cost of a token call per send.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	key := c.tokenKey()
	tok, err := c.tokens.Get(ctx, key)
	if err != nil {
		c.log.Warn("dingtalk: reading the token cache", slog.Any("error", err))
	} else if tok != "" {
		return tok, nil
	}

	// One refresh at a time in this process; others wait for its result.
	select {
	case c.tokenSem <- struct{}{}:
	case <-ctx.Done():
		return "", &adapters.APIError{Channel: ChannelName, Message: "waiting for an access token: " + ctx.Err().Error(), Kind: adapters.ErrTemporary}
	}
	defer func() { <-c.tokenSem }()
	if err == nil {
		if tok, err := c.tokens.Get(ctx, key); err == nil && tok != "" {
			return tok, nil
		}
	}

	tok, ttl, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	if err := c.tokens.Set(ctx, key, tok, ttl); err != nil {
		c.log.Warn("dingtalk: caching the access token", slog.Any("error", err))
	}
	c.log.Debug("dingtalk: access token refreshed", slog.Duration("cached_for", ttl))
	return tok, nil
}

// dropToken removes a token DingTalk refused from the cache.
func (c *Client) dropToken(ctx context.Context) {
	if err := c.tokens.Delete(ctx, c.tokenKey()); err != nil {
		c.log.Warn("dingtalk: dropping the refused access token", slog.Any("error", err))
	}
}

// fetchToken asks DingTalk for an access token and says how long to cache
// it: its lifetime less a safety margin.
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	var res tokenResponse
	f := c.post(ctx, c.cfg.APIBase+pathAccessToken, "",
		tokenRequest{AppKey: c.cfg.ClientID, AppSecret: c.cfg.ClientSecret}, &res)
	if f != nil {
		return "", 0, fmt.Errorf("getting access token: %w", f.apiError())
	}
	if res.AccessToken == "" {
		return "", 0, fmt.Errorf("getting access token: %w", &adapters.APIError{
			Channel: ChannelName, Code: 200, Message: "answer without accessToken", Kind: adapters.ErrTemporary})
	}
	return res.AccessToken, tokenTTL(time.Duration(res.ExpireIn) * time.Second), nil
}

// tokenTTL is how long to cache a token that lives for life.
func tokenTTL(life time.Duration) time.Duration {
	switch {
	case life <= 0:
		return time.Minute
	case life <= 2*tokenMargin:
		return life / 2
	}
	return life - tokenMargin
}
