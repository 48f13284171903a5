package oafake

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
	"time"
)

// PathMediaUpload is the account's upload of temporary media (新增临时素材).
const PathMediaUpload = "/cgi-bin/media/upload"

// Errcodes of media (全局返回码; the messages are WeChat's).
const (
	CodeInvalidMediaType = 40004 // type is not image, voice, video or thumb
	CodeInvalidFileType  = 40005 // an image that is not BMP, PNG, JPEG or GIF
	CodeInvalidFileSize  = 40006 // empty, or over the type's limit
	CodeInvalidMediaID   = 40007 // unknown or expired (3 days)
	CodeMissingMedia     = 41005 // no "media" part
)

// WeChat's limits of temporary media.
const (
	mediaTTL      = 72 * time.Hour
	maxImageBytes = 10 << 20
	maxVoiceBytes = 2 << 20
	maxVideoBytes = 10 << 20
	maxThumbBytes = 64 << 10
)

// Upload is an accepted media/upload.
type Upload struct {
	MediaID string
	// Type is image, voice, video or thumb.
	Type string
	// Filename, FileLength and ContentType are the "media" part's (its
	// Content-Disposition's filename and filelength, its Content-Type).
	Filename    string
	FileLength  string
	ContentType string
	// Data is the content.
	Data []byte
	// SHA256 is the hex digest of the content.
	SHA256 string
	At     time.Time
}

type mediaItem struct {
	typ     string
	created time.Time
}

// Uploads returns the media uploaded, in order.
func (f *Fake) Uploads() []Upload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.uploads)
}

// AddMedia makes mediaID a known temporary media of type typ, uploaded
// now, as an operator who uploaded it by hand would have it.
func (f *Fake) AddMedia(typ, mediaID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.media[mediaID] = &mediaItem{typ: typ, created: f.Now()}
}

// ExpireMedia makes every media uploaded so far unknown, as WeChat
// forgets temporary media after 3 days: messages naming them answer
// 40007.
func (f *Fake) ExpireMedia() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.media)
}

// knownMedia reports whether WeChat knows mediaID as a media of one of
// types; f.mu is held.
func (f *Fake) knownMedia(mediaID string, types ...string) bool {
	m := f.media[mediaID]
	return m != nil && f.Now().Sub(m.created) < mediaTTL && slices.Contains(types, m.typ)
}

// mediaUpload serves media/upload: a multipart form whose "media" part
// is the file, checked against WeChat's limits of the type.
func (f *Fake) mediaUpload(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	ok := f.tokens[r.URL.Query().Get("access_token")]
	f.mu.Unlock()
	if !ok {
		errcode(w, 42001, "access_token expired")
		return
	}
	typ := r.URL.Query().Get("type")
	limit := map[string]int{"image": maxImageBytes, "voice": maxVoiceBytes, "video": maxVideoBytes, "thumb": maxThumbBytes}[typ]
	if limit == 0 {
		errcode(w, CodeInvalidMediaType, "invalid media type")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		errcode(w, CodeMissingMedia, "media data missing")
		return
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var up *Upload
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			errcode(w, CodeMissingMedia, "media data missing")
			return
		}
		if p.FormName() != "media" || p.FileName() == "" {
			continue
		}
		data, err := io.ReadAll(p)
		if err != nil {
			errcode(w, CodeMissingMedia, "media data missing")
			return
		}
		up = &Upload{Type: typ, Filename: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data}
		// A part may say its filelength; the fake checks it when it does.
		if _, cd, err := mime.ParseMediaType(p.Header.Get("Content-Disposition")); err == nil && cd["filelength"] != "" {
			up.FileLength = cd["filelength"]
			if n, err := strconv.Atoi(cd["filelength"]); err != nil || n != len(data) {
				errcode(w, CodeInvalidFileSize, "invalid meida size")
				return
			}
		}
		break
	}
	if up == nil {
		errcode(w, CodeMissingMedia, "media data missing")
		return
	}
	if len(up.Data) == 0 || len(up.Data) > limit {
		errcode(w, CodeInvalidFileSize, "invalid meida size")
		return
	}
	if typ == "image" {
		switch http.DetectContentType(up.Data) {
		case "image/jpeg", "image/png", "image/gif", "image/bmp":
		default:
			errcode(w, CodeInvalidFileType, "invalid file type")
			return
		}
	}
	sum := sha256.Sum256(up.Data)
	up.SHA256 = hex.EncodeToString(sum[:])
	f.mu.Lock()
	if code := f.failUpload; code != 0 {
		f.failUpload = 0
		f.mu.Unlock()
		errcode(w, code, "injected")
		return
	}
	up.At = f.Now()
	f.msgID++
	up.MediaID = "oa_media_" + strconv.FormatInt(f.msgID, 10) + "_" + up.SHA256[:16]
	f.media[up.MediaID] = &mediaItem{typ: typ, created: up.At}
	f.uploads = append(f.uploads, *up)
	f.mu.Unlock()
	writeJSON(w, map[string]any{"type": typ, "media_id": up.MediaID, "created_at": up.At.Unix()})
}

// FailNextUpload makes the next media/upload answer errcode code.
func (f *Fake) FailNextUpload(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failUpload = code
}
