package wecom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/credential"
	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// tokenStore is the SDK's cache.Cache over an adapters.TokenCache. Cache
// failures are logged and read as a miss: a token can always be fetched
// again.
type tokenStore struct {
	tokens adapters.TokenCache
	log    *slog.Logger
}

var _ cache.ContextCache = (*tokenStore)(nil)

func (s *tokenStore) Get(key string) any {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return s.GetContext(ctx, key)
}

func (s *tokenStore) GetContext(ctx context.Context, key string) any {
	v, err := s.tokens.Get(ctx, key)
	if err != nil {
		s.log.Warn("reading wecom access token from cache", slog.Any("error", err))
		return nil
	}
	if v == "" {
		return nil
	}
	return v
}

func (s *tokenStore) Set(key string, val any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return s.SetContext(ctx, key, val, timeout)
}

func (s *tokenStore) SetContext(ctx context.Context, key string, val any, timeout time.Duration) error {
	v, ok := val.(string)
	if !ok {
		return fmt.Errorf("caching wecom access token: value is %T, not a string", val)
	}
	return s.tokens.Set(ctx, key, v, timeout)
}

func (s *tokenStore) IsExist(key string) bool { return s.Get(key) != nil }

func (s *tokenStore) IsExistContext(ctx context.Context, key string) bool {
	return s.GetContext(ctx, key) != nil
}

func (s *tokenStore) Delete(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return s.DeleteContext(ctx, key)
}

func (s *tokenStore) DeleteContext(ctx context.Context, key string) error {
	return s.tokens.Delete(ctx, key)
}

// tokenSource fetches and caches the access token of one secret. It
// implements the SDK's credential.AccessTokenContextHandle, so the SDK's
// own calls use it too.
type tokenSource struct {
	corpID string
	secret string
	scope  string
	key    string
	store  *tokenStore
	log    *slog.Logger
	mu     sync.Mutex // one gettoken at a time per process and secret
}

var _ credential.AccessTokenContextHandle = (*tokenSource)(nil)

func newTokenSource(corpID, secret, scope string, store *tokenStore, log *slog.Logger) *tokenSource {
	sum := sha256.Sum256([]byte(secret))
	return &tokenSource{
		corpID: corpID,
		secret: secret,
		scope:  scope,
		// The hash tells secrets apart (and a rotated secret from the old
		// one) without putting the secret in Redis.
		key:   "wecom:access_token:" + corpID + ":" + hex.EncodeToString(sum[:6]),
		store: store,
		log:   log,
	}
}

// tokenExpiryMargin is how long before WeCom's expiry a cached token is
// dropped.
const tokenExpiryMargin = 10 * time.Minute

// GetAccessToken is the SDK's entry point; the SDK's calls take no context.
func (t *tokenSource) GetAccessToken() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return t.GetAccessTokenContext(ctx)
}

// GetAccessTokenContext returns the cached token, or fetches one with
// gettoken and caches it.
func (t *tokenSource) GetAccessTokenContext(ctx context.Context) (string, error) {
	if v, ok := t.store.GetContext(ctx, t.key).(string); ok {
		return v, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.store.GetContext(ctx, t.key).(string); ok {
		return v, nil
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("getting wecom access token: %w", err)
	}
	body, err := util.HTTPGetContext(ctx, qyapi+"gettoken?corpid="+url.QueryEscape(t.corpID)+"&corpsecret="+url.QueryEscape(t.secret))
	if err != nil {
		return "", fmt.Errorf("getting wecom access token: %w", classify(err))
	}
	var res credential.ResAccessToken
	if err := json.Unmarshal(body, &res); err != nil {
		return "", fmt.Errorf("getting wecom access token: %w", unreadable(err))
	}
	if res.ErrCode != 0 {
		return "", fmt.Errorf("getting wecom access token: %w", newAPIError(res.ErrCode, res.ErrMsg))
	}
	if res.AccessToken == "" {
		return "", fmt.Errorf("getting wecom access token: %w", unreadable(errors.New("no access_token in the answer")))
	}
	ttl := time.Duration(res.ExpiresIn)*time.Second - tokenExpiryMargin
	if ttl < time.Minute {
		ttl = time.Minute
	}
	if err := t.store.SetContext(ctx, t.key, res.AccessToken, ttl); err != nil {
		t.log.Warn("caching wecom access token", slog.String("scope", t.scope), slog.Any("error", err))
	}
	t.log.Info("wecom access token fetched", slog.String("scope", t.scope), slog.Int64("expires_in", res.ExpiresIn))
	return res.AccessToken, nil
}

// invalidate drops the cached token after WeCom refused refused, unless
// another replica has already replaced it.
func (t *tokenSource) invalidate(ctx context.Context, refused string) {
	if cur, ok := t.store.GetContext(ctx, t.key).(string); ok && cur != refused {
		return
	}
	if err := t.store.DeleteContext(ctx, t.key); err != nil {
		t.log.Warn("dropping refused wecom access token", slog.String("scope", t.scope), slog.Any("error", err))
		return
	}
	t.log.Info("wecom access token refused; dropped", slog.String("scope", t.scope))
}
