package wecom

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

	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// Temporary media (素材管理, media/upload). A message that carries a
// picture or a file carries its media_id; the templates name pictures by
// URL, so the channel fetches the URL, uploads it, and caches the media id
// per URL, shared between replicas, until shortly before WeCom forgets it.

// Media types of media/upload the channel uses.
const (
	MediaImage = "image"
	MediaFile  = "file"
)

// WeCom's limits of media/upload (上传临时素材, document 90253): every file
// larger than 5 bytes; images (JPG or PNG) at most 10 MB, files at most
// 20 MB. A media id lives 3 days and is shared by the corp's apps.
const (
	minMediaBytes = 6
	maxImageBytes = 10 << 20
	maxFileBytes  = 20 << 20
	// mediaLifetime is how long WeCom keeps a temporary media.
	mediaLifetime = 72 * time.Hour
	// mediaCacheTTL is how long a media id is reused: well before WeCom
	// forgets it, so that a message task confirmed hours after it was
	// created still finds its media.
	mediaCacheTTL = 60 * time.Hour
	// mediaFetchTimeout bounds fetching one source URL.
	mediaFetchTimeout = 20 * time.Second
)

// maxMediaBytes is the upload limit of a media type.
func maxMediaBytes(typ string) int64 {
	if typ == MediaImage {
		return maxImageBytes
	}
	return maxFileBytes
}

type uploadResponse struct {
	util.CommonError
	Type    string `json:"type"`
	MediaID string `json:"media_id"`
}

// UploadMedia uploads a temporary media (media/upload, multipart) and
// returns its media id, good for 3 days. typ is MediaImage (JPG or PNG,
// at most 10 MB) or MediaFile (at most 20 MB); filename is the name WeCom
// shows for a file. The content is never logged.
func (a *API) UploadMedia(ctx context.Context, typ, filename, contentType string, data []byte) (string, error) {
	const op = "uploading media"
	switch {
	case typ != MediaImage && typ != MediaFile:
		return "", invalidRequest(op, "unknown media type %q", typ)
	case len(data) < minMediaBytes:
		return "", invalidRequest(op, "%d bytes: WeCom wants more than 5", len(data))
	case int64(len(data)) > maxMediaBytes(typ):
		return "", invalidRequest(op, "%d bytes: an %s is at most %d MB", len(data), typ, maxMediaBytes(typ)>>20)
	}
	if filename == "" {
		filename = typ
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="media"; filename=%q; filelength=%d`, filename, len(data)))
	h.Set("Content-Type", contentType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	_, _ = part.Write(data)
	if err := mw.Close(); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	var res uploadResponse
	err = a.do(ctx, a.appTok, op, func(token string) error {
		uri := qyapi + "media/upload?access_token=" + url.QueryEscape(token) + "&type=" + typ
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(body.Bytes()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := util.DefaultHTTPClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			// The form classify reads the status from.
			return fmt.Errorf("http post error : statusCode=%d", resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		return util.DecodeWithError(b, &res, "media/upload")
	})
	if err != nil {
		return "", err
	}
	if res.MediaID == "" {
		return "", fmt.Errorf("%s: %w", op, unreadable(errors.New("no media_id in the answer")))
	}
	return res.MediaID, nil
}

// mediaStore turns the pictures and files a message names by URL into
// media ids: fetched, checked against WeCom's limits, uploaded, and cached
// per URL in the shared cache.
type mediaStore struct {
	api    *API
	cache  adapters.TokenCache
	http   *http.Client
	corpID string
	log    *slog.Logger
	// group makes concurrent sends of one picture upload it once per
	// process; the shared cache does so across replicas, mostly.
	mu      sync.Mutex
	pending map[string]*upload
}

// upload is one fetch-and-upload in progress, that concurrent sends of
// the same source wait for.
type upload struct {
	done chan struct{}
	id   string
	err  error
}

// once runs fn for key unless a run for key is in progress, in which case
// it waits for that run and returns its result.
func (s *mediaStore) once(ctx context.Context, key string, fn func() (string, error)) (string, error) {
	s.mu.Lock()
	if u, ok := s.pending[key]; ok {
		s.mu.Unlock()
		select {
		case <-u.done:
			return u.id, u.err
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for an upload: %w: %w", ctx.Err(), adapters.ErrTemporary)
		}
	}
	if s.pending == nil {
		s.pending = make(map[string]*upload)
	}
	u := &upload{done: make(chan struct{})}
	s.pending[key] = u
	s.mu.Unlock()
	u.id, u.err = fn()
	s.mu.Lock()
	delete(s.pending, key)
	s.mu.Unlock()
	close(u.done)
	return u.id, u.err
}

// mediaCacheKey is where the media id of a source URL is cached: apart
// from the access tokens, per corp (media ids are a corp's) and type.
func (s *mediaStore) mediaCacheKey(typ, src string) string {
	sum := sha256.Sum256([]byte(src))
	return "wecom:media:" + s.corpID + ":" + typ + ":" + hex.EncodeToString(sum[:16])
}

// isURL reports whether a media field holds an http(s) URL to upload
// rather than a media id.
func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// resolve returns the media id for src: src itself when it is a media id,
// else the cached or freshly uploaded media id of the URL. Errors wrap
// adapters.ErrInvalidMessage when the source is unusable (missing, not a
// JPG or PNG, too large, refused by WeCom) and adapters.ErrTemporary when
// it could not be fetched or uploaded this time.
func (s *mediaStore) resolve(ctx context.Context, typ, src, filename string) (string, error) {
	if !isURL(src) {
		return src, nil
	}
	key := s.mediaCacheKey(typ, src)
	if id, err := s.cache.Get(ctx, key); err != nil {
		s.log.Warn("reading wecom media id from cache", slog.Any("error", err))
	} else if id != "" {
		return id, nil
	}
	return s.once(ctx, key, func() (string, error) {
		data, ctype, name, err := s.fetch(ctx, typ, src, filename)
		if err != nil {
			return "", err
		}
		id, err := s.api.UploadMedia(ctx, typ, name, ctype, data)
		if err != nil {
			return "", uploadError(src, err)
		}
		if err := s.cache.Set(ctx, key, id, mediaCacheTTL); err != nil {
			s.log.Warn("caching wecom media id", slog.Any("error", err))
		}
		s.log.Info("wecom media uploaded", slog.String("type", typ), slog.String("source", shownURL(src)), slog.Int("bytes", len(data)))
		return id, nil
	})
}

// forget drops the cached media ids of m's sources, after WeCom refused
// one of them (40007: expired or unknown media id).
func (s *mediaStore) forget(ctx context.Context, srcs []mediaSource) {
	for _, src := range srcs {
		if err := s.cache.Delete(ctx, s.mediaCacheKey(src.typ, src.src)); err != nil {
			s.log.Warn("dropping wecom media id from cache", slog.Any("error", err))
		}
	}
}

// uploadError classifies a failed upload: a refusal of the content by
// WeCom is the message's fault; a transport failure or a busy WeCom is
// worth a retry, and is no "outcome unknown": nothing was sent yet.
func uploadError(src string, err error) error {
	src = shownURL(src)
	var apiErr *adapters.APIError
	switch {
	case errors.Is(err, adapters.ErrInvalidMessage):
		return fmt.Errorf("uploading %s: WeCom refused it: %w", src, err)
	case errors.As(err, &apiErr) && apiErr.Kind == nil:
		return fmt.Errorf("uploading %s: WeCom refused it: %w: %w", src, err, adapters.ErrInvalidMessage)
	case InDoubt(err):
		return fmt.Errorf("uploading %s: %s: %w", src, err.Error(), adapters.ErrTemporary)
	}
	return fmt.Errorf("uploading %s: %w", src, err)
}

// fetch downloads src, bounded by WeCom's limit of typ and a timeout, and
// checks that an image is a JPG or PNG. It returns the content, its
// content type and a file name.
func (s *mediaStore) fetch(ctx context.Context, typ, src, filename string) ([]byte, string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, mediaFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v", shownURL(src), adapters.ErrInvalidMessage, err)
	}
	resp, err := s.http.Do(req)
	// Errors name the link without its query (a signed link's signature
	// must not reach logs or the outbox), and not the client's copy of it.
	shown := shownURL(src)
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, errPrivateAddress) {
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v", shown, adapters.ErrInvalidMessage, err)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v", shown, adapters.ErrTemporary, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return nil, "", "", fmt.Errorf("fetching %s: HTTP %d: %w", shown, resp.StatusCode, adapters.ErrTemporary)
	case resp.StatusCode != http.StatusOK:
		return nil, "", "", fmt.Errorf("fetching %s: HTTP %d: %w", shown, resp.StatusCode, adapters.ErrInvalidMessage)
	}
	limit := maxMediaBytes(typ)
	if resp.ContentLength > limit {
		return nil, "", "", fmt.Errorf("fetching %s: %d bytes, over WeCom's %d MB for an %s: %w", shown, resp.ContentLength, limit>>20, typ, adapters.ErrInvalidMessage)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("fetching %s: %w: %v", shown, adapters.ErrTemporary, err)
	}
	switch {
	case int64(len(data)) > limit:
		return nil, "", "", fmt.Errorf("fetching %s: over WeCom's %d MB for an %s: %w", shown, limit>>20, typ, adapters.ErrInvalidMessage)
	case len(data) < minMediaBytes:
		return nil, "", "", fmt.Errorf("fetching %s: %d bytes, WeCom wants more than 5: %w", shown, len(data), adapters.ErrInvalidMessage)
	}
	header := resp.Header.Get("Content-Type")
	ctype, _, _ := mime.ParseMediaType(header)
	if filename == "" {
		filename = path.Base(resp.Request.URL.Path)
		if filename == "/" || filename == "." {
			filename = ""
		}
	}
	if typ == MediaImage {
		sniffed := http.DetectContentType(data)
		ext := map[string]string{"image/jpeg": ".jpg", "image/png": ".png"}[sniffed]
		declared := ctype == "" || ctype == sniffed || ctype == "image/jpg" && sniffed == "image/jpeg" ||
			ctype == "application/octet-stream" || ctype == "binary/octet-stream"
		if ext == "" || !declared {
			return nil, "", "", fmt.Errorf("fetching %s: not a JPG or PNG picture (Content-Type %q, content %s): %w", shown, header, sniffed, adapters.ErrInvalidMessage)
		}
		ctype = sniffed
		if !strings.HasSuffix(strings.ToLower(filename), ext) && !(ext == ".jpg" && strings.HasSuffix(strings.ToLower(filename), ".jpeg")) {
			filename = strings.TrimSuffix(filename, path.Ext(filename)) + ext
		}
		if filename == ext {
			filename = "image" + ext
		}
	}
	if filename == "" {
		filename = "file-" + strconv.Itoa(len(data))
	}
	return data, ctype, filename, nil
}

// shownURL is src as logs and errors show it: without its query and
// fragment, which may carry a signature or a token.
func shownURL(src string) string {
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
