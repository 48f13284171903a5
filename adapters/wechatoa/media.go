package wechatoa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// Temporary media (新增临时素材, media/upload). A customer-service image
// carries a media_id and a mini program card its cover's thumb_media_id;
// templates name pictures by URL, so the channel fetches the URL,
// uploads it, and caches the media id per URL in the cache the replicas
// share (adapters.Media), until shortly before WeChat forgets it.

// MediaImage is the media type of the pictures the channel uploads:
// images, and mini program cards' covers.
const MediaImage = "image"

// apiMediaUpload is the upload of a temporary media.
const apiMediaUpload = "/cgi-bin/media/upload"

// WeChat's limits of media/upload: an image at most 10 MB, BMP, PNG,
// JPEG or GIF. A media id lives 3 days.
const (
	maxImageBytes = 10 << 20
	// mediaCacheTTL is how long a media id is reused: well before
	// WeChat's 3 days.
	mediaCacheTTL = 60 * time.Hour
	// uploadTimeout bounds one upload of up to 10 MB.
	uploadTimeout = 60 * time.Second
)

// imageFormats are the pictures WeChat takes, as sniffed, with the
// extension of the uploaded file's name.
var imageFormats = map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/bmp": ".bmp"}

// newMedia is the account's adapters.Media: media ids cached per AppID.
func (c *Client) newMedia(client *http.Client) *adapters.Media {
	prefix := "wechat_oa."
	if c.instance != adapters.DefaultInstance {
		prefix = "wechat_oa.instances." + c.instance + "."
	}
	return &adapters.Media{Vendor: "WeChat", KeyPrefix: "wechat_oa:media:" + c.cfg.AppID + ":", Cache: c.tokens, HTTP: client,
		Limits: map[string]adapters.MediaLimit{
			MediaImage: {MinBytes: 1, MaxBytes: maxImageBytes, Formats: imageFormats, FormatNames: "a JPG, PNG, GIF or BMP picture"},
		},
		TTL: mediaCacheTTL, PrivateKey: prefix + "media_fetch_private", Upload: c.UploadMedia, Log: c.log}
}

// form is a multipart body (media/upload).
type form struct {
	contentType string
	data        []byte
}

// UploadMedia uploads a temporary media (media/upload, multipart field
// "media") and returns its media id, good for 3 days. typ is MediaImage
// (at most 10 MB); filename and contentType are the part's. The content
// is never logged. WeChat's refusals (40004 media type, 40005 file type,
// 40006 size) are APIErrors of no common kind.
func (c *Client) UploadMedia(ctx context.Context, typ, filename, contentType string, data []byte) (string, error) {
	const op = "uploading media"
	switch {
	case typ != MediaImage:
		return "", fmt.Errorf("%s: unknown media type %q: %w", op, typ, adapters.ErrInvalidMessage)
	case len(data) == 0 || len(data) > maxImageBytes:
		return "", fmt.Errorf("%s: %d bytes: an image is 1 byte to %d MB: %w", op, len(data), maxImageBytes>>20, adapters.ErrInvalidMessage)
	}
	body, formType, err := adapters.MediaForm(filename, typ, contentType, data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	var out struct {
		apiError
		MediaID string `json:"media_id"`
	}
	f := &form{contentType: formType, data: body}
	if err := c.call(ctx, apiMediaUpload, url.Values{"type": {typ}}, f, &out); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if out.MediaID == "" {
		return "", fmt.Errorf("%s: no media_id in wechat's answer: %w", op, adapters.ErrTemporary)
	}
	return out.MediaID, nil
}

// mediaRefused reports whether WeChat refused a media id (40007: expired
// or unknown).
func mediaRefused(err error) bool {
	var e *adapters.APIError
	return errors.As(err, &e) && e.Code == codeInvalidMediaID
}
