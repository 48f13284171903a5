package wecomfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PathMediaUpload is WeCom's upload of temporary media (上传临时素材).
const PathMediaUpload = "/cgi-bin/media/upload"

// Errcodes of media (全局错误码; the messages are the fake's).
const (
	CodeInvalidMediaType = 40004 // type is not image, voice, video or file
	CodeInvalidFileType  = 40005 // an image that is not a JPG or PNG
	CodeInvalidFileSize  = 40006 // 5 bytes or less, or a file over 20 MB
	CodeInvalidMediaID   = 40007 // unknown, expired (3 days) or of another type
	CodeInvalidImageSize = 40009 // an image over 10 MB
	CodeMissingMedia     = 41005 // no "media" part
)

// WeCom's limits of temporary media (document 90253).
const (
	mediaTTL      = 72 * time.Hour
	minMediaBytes = 6
	maxImageBytes = 10 << 20
	maxVoiceBytes = 2 << 20
	maxVideoBytes = 10 << 20
	maxFileBytes  = 20 << 20
)

// MediaUpload is an accepted media/upload.
type MediaUpload struct {
	MediaID string
	// Type is image, voice, video or file.
	Type string
	// Filename and ContentType are the form part's.
	Filename    string
	ContentType string
	Size        int
	// SHA256 is the hex digest of the content.
	SHA256 string
	At     time.Time
}

type mediaItem struct {
	typ     string
	created time.Time
}

type mediaState struct {
	items   map[string]*mediaItem
	uploads []MediaUpload
}

// Uploads returns the media uploaded, in order.
func (s *Server) Uploads() []MediaUpload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.media.uploads)
}

// AddMedia makes mediaID a known temporary media of type typ (image,
// voice, video or file), uploaded now, as an operator who uploaded it by
// hand would have it. It expires after 3 days by the server's clock.
func (s *Server) AddMedia(typ, mediaID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media.items[mediaID] = &mediaItem{typ: typ, created: s.now()}
}

// ExpireMedia makes every media uploaded so far unknown, as WeCom forgets
// temporary media after 3 days: messages naming them answer 40007.
func (s *Server) ExpireMedia() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.media.items)
}

// checkMedia refuses a media id WeCom does not know as a media of type
// typ (40007); s.mu is held.
func (s *Server) checkMedia(typ, mediaID, where string) *apiError {
	m := s.media.items[mediaID]
	switch {
	case mediaID == "":
		return errorf(CodeInvalidParameter, "%s: missing media_id", where)
	case m == nil, s.now().Sub(m.created) >= mediaTTL:
		return errorf(CodeInvalidMediaID, "invalid media_id %q in %s", mediaID, where)
	case m.typ != typ:
		// Not verified: WeCom's answer to a file's media id as an image.
		return errorf(CodeInvalidMediaID, "media_id %q of %s is a %s, not an %s", mediaID, where, m.typ, typ)
	}
	return nil
}

func (s *Server) serveMediaUpload(r *http.Request, body []byte) (map[string]any, *apiError) {
	typ := r.URL.Query().Get("type")
	limit := map[string]int{"image": maxImageBytes, "voice": maxVoiceBytes, "video": maxVideoBytes, "file": maxFileBytes}[typ]
	if limit == 0 {
		return nil, errorf(CodeInvalidMediaType, "invalid media type %q", typ)
	}
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		return nil, codeErr(CodeMissingMedia)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var (
		up   *MediaUpload
		data []byte
	)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errorf(CodeMissingMedia, "malformed multipart body")
		}
		if p.FormName() != "media" || p.FileName() == "" {
			continue
		}
		data, err = io.ReadAll(p)
		if err != nil {
			return nil, errorf(CodeMissingMedia, "malformed multipart body")
		}
		up = &MediaUpload{Type: typ, Filename: p.FileName(), ContentType: p.Header.Get("Content-Type"), Size: len(data)}
		// WeCom's example part carries filelength; the fake checks it when
		// it is there.
		if _, cd, err := mime.ParseMediaType(p.Header.Get("Content-Disposition")); err == nil && cd["filelength"] != "" {
			if n, err := strconv.Atoi(cd["filelength"]); err != nil || n != len(data) {
				return nil, errorf(CodeInvalidFileSize, "filelength %q is not the part's %d bytes", cd["filelength"], len(data))
			}
		}
		break
	}
	if up == nil {
		return nil, codeErr(CodeMissingMedia)
	}
	switch {
	case len(data) < minMediaBytes:
		return nil, errorf(CodeInvalidFileSize, "media size must be more than 5 bytes")
	case len(data) > limit && typ == "image":
		return nil, errorf(CodeInvalidImageSize, "image size out of limit %d", limit)
	case len(data) > limit:
		return nil, errorf(CodeInvalidFileSize, "%s size out of limit %d", typ, limit)
	}
	if typ == "image" {
		if sniffed := http.DetectContentType(data); sniffed != "image/jpeg" && sniffed != "image/png" {
			return nil, errorf(CodeInvalidFileType, "image must be JPG or PNG, got %s", sniffed)
		}
	}
	sum := sha256.Sum256(data)
	up.SHA256 = hex.EncodeToString(sum[:])
	up.At = s.now()
	s.seq++
	up.MediaID = "3" + strings.ToUpper(randomHex(4)) + "_fake_" + strconv.Itoa(s.seq) + "_" + randomHex(12)
	s.media.items[up.MediaID] = &mediaItem{typ: typ, created: up.At}
	s.media.uploads = append(s.media.uploads, *up)
	// WeCom answers errmsg "" here, where other APIs say "ok"; the fake's
	// plumbing says "ok" everywhere (not significant to clients).
	out := s.recorded("media_upload")
	out["type"], out["media_id"], out["created_at"] = typ, up.MediaID, strconv.FormatInt(up.At.Unix(), 10)
	return out, nil
}
