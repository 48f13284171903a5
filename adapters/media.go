package adapters

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Media turns the pictures and files messages name by URL into a
// vendor's media ids: a message that carries a picture carries the media
// id of a temporary upload (WeCom's and the Official Account's
// media/upload), while templates and workflows name pictures by URL. The
// URL is fetched (bounded by a timeout and the vendor's limits), checked,
// uploaded with Upload, and its media id cached per URL in the cache the
// replicas share, until shortly before the vendor forgets it. A channel
// configures one Media and calls Resolve for each picture it sends, and
// Forget when the vendor refused a cached media id.
type Media struct {
	// Vendor names the vendor in errors: "WeCom".
	Vendor string
	// KeyPrefix starts the cache keys: a key is KeyPrefix, the media
	// type, ":" and a hash of the URL. It keeps them apart from the
	// access tokens and per account (media ids are an account's).
	KeyPrefix string
	// Cache is the cache the replicas share (the access tokens'); nil
	// caches nothing: every send uploads its pictures.
	Cache TokenCache
	// HTTP fetches the sources: MediaClient, or a test's client.
	HTTP *http.Client
	// Limits are the vendor's limits, by media type; a type without
	// limits is refused.
	Limits map[string]MediaLimit
	// TTL is how long a media id is reused: well before the vendor
	// forgets it, so that a message confirmed hours after it was built
	// still finds its media.
	TTL time.Duration
	// PrivateKey is the configuration key that allows private addresses
	// (wecom.media_fetch_private), named when a fetch is refused.
	PrivateKey string
	// Upload uploads one fetched source and returns its media id.
	Upload func(ctx context.Context, typ, filename, contentType string, data []byte) (string, error)
	// UploadError classifies a failed Upload of src (as ShownURL shows
	// it). Default: UploadError.
	UploadError func(vendor, src string, err error) error
	// Log logs uploads and cache failures; default: discarded.
	Log *slog.Logger

	// pending makes concurrent sends of one picture upload it once per
	// process; the shared cache does so across replicas, mostly.
	mu      sync.Mutex
	pending map[string]*pendingUpload
}

// MediaLimit is a vendor's limits on one media type.
type MediaLimit struct {
	// MinBytes and MaxBytes bound the content's size.
	MinBytes, MaxBytes int64
	// Formats are the content types the type takes, as
	// http.DetectContentType sniffs them, each with the extension an
	// upload's file name gets ("image/png": ".png"); nil takes any
	// content (a file).
	Formats map[string]string
	// FormatNames say what Formats are, in errors: "a JPG or PNG
	// picture".
	FormatNames string
}

// mediaFetchTimeout bounds fetching one source URL.
const mediaFetchTimeout = 20 * time.Second

// pendingUpload is one fetch-and-upload in progress, that concurrent
// sends of the same source wait for.
type pendingUpload struct {
	done chan struct{}
	id   string
	err  error
}

// IsURL reports whether a media field holds an http(s) URL to upload
// rather than a media id.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// ShownURL is src as logs and errors show it: without its query and
// fragment, which may carry a signature or a token.
func ShownURL(src string) string {
	u, err := url.Parse(src)
	if err != nil {
		return "(an unreadable link)"
	}
	shown := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.Fragment != "" {
		shown += "?…"
	}
	return shown
}

func (m *Media) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// cacheKey is where the media id of a source URL of type typ is cached.
func (m *Media) cacheKey(typ, src string) string {
	sum := sha256.Sum256([]byte(src))
	return m.KeyPrefix + typ + ":" + hex.EncodeToString(sum[:16])
}

// Resolve returns the media id for src: src itself when it is a media id
// (not an http(s) URL), else the cached or freshly uploaded media id of
// the URL. Errors wrap ErrInvalidMessage when the source is unusable
// (missing, not of the type's formats, too large or small, on a private
// address, refused by the vendor) and ErrTemporary when it could not be
// fetched or uploaded this time.
func (m *Media) Resolve(ctx context.Context, typ, src, filename string) (string, error) {
	if !IsURL(src) {
		return src, nil
	}
	key := m.cacheKey(typ, src)
	if m.Cache != nil {
		id, err := m.Cache.Get(ctx, key)
		if err != nil {
			m.log().Warn("reading a media id from the cache", slog.Any("error", err))
		} else if id != "" {
			return id, nil
		}
	}
	return m.once(ctx, key, func() (string, error) {
		data, ctype, name, err := m.fetch(ctx, typ, src, filename)
		if err != nil {
			return "", err
		}
		id, err := m.Upload(ctx, typ, name, ctype, data)
		if err != nil {
			classify := m.UploadError
			if classify == nil {
				classify = UploadError
			}
			return "", classify(m.Vendor, ShownURL(src), err)
		}
		if m.Cache != nil {
			if err := m.Cache.Set(ctx, key, id, m.TTL); err != nil {
				m.log().Warn("caching a media id", slog.Any("error", err))
			}
		}
		m.log().Info("media uploaded", slog.String("type", typ), slog.String("source", ShownURL(src)), slog.Int("bytes", len(data)))
		return id, nil
	})
}

// Forget drops the cached media id of a source URL of type typ, after
// the vendor refused it (an expired or unknown media id): the next send
// uploads it again.
func (m *Media) Forget(ctx context.Context, typ, src string) {
	if m.Cache == nil {
		return
	}
	if err := m.Cache.Delete(ctx, m.cacheKey(typ, src)); err != nil {
		m.log().Warn("dropping a media id from the cache", slog.Any("error", err))
	}
}

// once runs fn for key unless a run for key is in progress, in which case
// it waits for that run and returns its result.
func (m *Media) once(ctx context.Context, key string, fn func() (string, error)) (string, error) {
	m.mu.Lock()
	if u, ok := m.pending[key]; ok {
		m.mu.Unlock()
		select {
		case <-u.done:
			return u.id, u.err
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for an upload: %w: %w", ctx.Err(), ErrTemporary)
		}
	}
	if m.pending == nil {
		m.pending = make(map[string]*pendingUpload)
	}
	u := &pendingUpload{done: make(chan struct{})}
	m.pending[key] = u
	m.mu.Unlock()
	u.id, u.err = fn()
	m.mu.Lock()
	delete(m.pending, key)
	m.mu.Unlock()
	close(u.done)
	return u.id, u.err
}

// UploadError classifies a failed upload of src (as ShownURL shows it):
// a refusal of the content by the vendor (ErrInvalidMessage, or an
// APIError of no common kind) is the message's fault; anything else keeps
// its kind (a transport failure or a busy vendor is worth a retry).
func UploadError(vendor, src string, err error) error {
	var apiErr *APIError
	switch {
	case errors.Is(err, ErrInvalidMessage):
		return fmt.Errorf("uploading %s: %s refused it: %w", src, vendor, err)
	case errors.As(err, &apiErr) && apiErr.Kind == nil:
		return fmt.Errorf("uploading %s: %s refused it: %w: %w", src, vendor, err, ErrInvalidMessage)
	}
	return fmt.Errorf("uploading %s: %w", src, err)
}

// fetch downloads src, bounded by the limits of typ and a timeout, and
// checks its format. It returns the content, its content type and a file
// name.
func (m *Media) fetch(ctx context.Context, typ, src, filename string) ([]byte, string, string, error) {
	lim, ok := m.Limits[typ]
	if !ok {
		return nil, "", "", fmt.Errorf("fetching %s: %s takes no %s: %w", ShownURL(src), m.Vendor, typ, ErrInvalidMessage)
	}
	ctx, cancel := context.WithTimeout(ctx, mediaFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v", ShownURL(src), ErrInvalidMessage, err)
	}
	client := m.HTTP
	if client == nil {
		client = MediaClient(false)
	}
	resp, err := client.Do(req)
	// Errors name the link without its query (a signed link's signature
	// must not reach logs or the outbox), and not the client's copy of it.
	shown := ShownURL(src)
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, ErrPrivateAddress) {
		allow := ""
		if m.PrivateKey != "" {
			allow = " (" + m.PrivateKey + ")"
		}
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v%s", shown, ErrInvalidMessage, err, allow)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v", shown, ErrTemporary, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return nil, "", "", fmt.Errorf("fetching %s: HTTP %d: %w", shown, resp.StatusCode, ErrTemporary)
	case resp.StatusCode != http.StatusOK:
		return nil, "", "", fmt.Errorf("fetching %s: HTTP %d: %w", shown, resp.StatusCode, ErrInvalidMessage)
	}
	limit := lim.MaxBytes
	if resp.ContentLength > limit {
		return nil, "", "", fmt.Errorf("fetching %s: %d bytes, over %s's %s for an %s: %w", shown, resp.ContentLength, m.Vendor, size(limit), typ, ErrInvalidMessage)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v", shown, ErrTemporary, err)
	}
	switch {
	case int64(len(data)) > limit:
		return nil, "", "", fmt.Errorf("fetching %s: over %s's %s for an %s: %w", shown, m.Vendor, size(limit), typ, ErrInvalidMessage)
	case int64(len(data)) < lim.MinBytes:
		return nil, "", "", fmt.Errorf("fetching %s: %d bytes, %s wants more than %d: %w", shown, len(data), m.Vendor, lim.MinBytes-1, ErrInvalidMessage)
	}
	header := resp.Header.Get("Content-Type")
	ctype, _, _ := mime.ParseMediaType(header)
	if filename == "" {
		filename = path.Base(resp.Request.URL.Path)
		if filename == "/" || filename == "." {
			filename = ""
		}
	}
	if lim.Formats != nil {
		sniffed := http.DetectContentType(data)
		ext := lim.Formats[sniffed]
		if ext == "" || !declares(ctype, sniffed) {
			return nil, "", "", fmt.Errorf("fetching %s: not %s (Content-Type %q, content %s): %w", shown, lim.FormatNames, header, sniffed, ErrInvalidMessage)
		}
		ctype = sniffed
		lower := strings.ToLower(filename)
		if !strings.HasSuffix(lower, ext) && !(ext == ".jpg" && strings.HasSuffix(lower, ".jpeg")) {
			filename = strings.TrimSuffix(filename, path.Ext(filename)) + ext
		}
		if filename == ext {
			filename = typ + ext
		}
	}
	if filename == "" {
		filename = "file-" + strconv.Itoa(len(data))
	}
	return data, ctype, filename, nil
}

// declares reports whether a source's Content-Type (without parameters)
// agrees with its sniffed content: the same, a known alias, none, or
// "octet-stream" (object stores' default).
func declares(ctype, sniffed string) bool {
	switch ctype {
	case "", sniffed, "application/octet-stream", "binary/octet-stream":
		return true
	case "image/jpg":
		return sniffed == "image/jpeg"
	case "image/x-ms-bmp", "image/x-bmp":
		return sniffed == "image/bmp"
	}
	return false
}

// size is a byte limit as errors say it: "10 MB", "64 KB".
func size(n int64) string {
	if n >= 1<<20 {
		return strconv.FormatInt(n>>20, 10) + " MB"
	}
	return strconv.FormatInt(n>>10, 10) + " KB"
}

// MediaForm is the multipart body of a WeChat-family media/upload (WeCom,
// an Official Account): one part "media" carrying the file with its
// name, length and content type ("" application/octet-stream; an empty
// filename is fallback). It returns the body and its Content-Type.
func MediaForm(filename, fallback, contentType string, data []byte) (body []byte, formType string, err error) {
	if filename == "" {
		filename = fallback
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="media"; filename=%q; filelength=%d`, filename, len(data)))
	h.Set("Content-Type", contentType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	_, _ = part.Write(data)
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}
