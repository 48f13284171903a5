package wecom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
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
	body, formType, err := adapters.MediaForm(filename, typ, contentType, data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	var res uploadResponse
	err = a.do(ctx, a.appTok, op, func(token string) error {
		uri := qyapi + "media/upload?access_token=" + url.QueryEscape(token) + "&type=" + typ
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", formType)
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

// newMedia is the channel's adapters.Media: WeCom's limits, its media
// ids cached per corp, uploads through api.
func newMedia(api *API, corpID, instance string, cache adapters.TokenCache, client *http.Client, log *slog.Logger) *adapters.Media {
	image := map[string]string{"image/jpeg": ".jpg", "image/png": ".png"}
	return &adapters.Media{Vendor: "WeCom", KeyPrefix: "wecom:media:" + corpID + ":", Cache: cache, HTTP: client,
		Limits: map[string]adapters.MediaLimit{
			MediaImage: {MinBytes: minMediaBytes, MaxBytes: maxImageBytes, Formats: image, FormatNames: "a JPG or PNG picture"},
			MediaFile:  {MinBytes: minMediaBytes, MaxBytes: maxFileBytes},
		},
		TTL: mediaCacheTTL, PrivateKey: instancePrefix(instance) + "media_fetch_private",
		Upload: api.UploadMedia, UploadError: uploadError, Log: log}
}

// uploadError classifies a failed upload as adapters.UploadError does; a
// failure after which WeCom may have taken the upload (InDoubt) is no
// "outcome unknown" here: nothing was sent yet, and it is worth a retry.
func uploadError(vendor, src string, err error) error {
	var apiErr *adapters.APIError
	invalid := errors.Is(err, adapters.ErrInvalidMessage) || errors.As(err, &apiErr) && apiErr.Kind == nil
	if !invalid && InDoubt(err) {
		return fmt.Errorf("uploading %s: %s: %w", src, err.Error(), adapters.ErrTemporary)
	}
	return adapters.UploadError(vendor, src, err)
}
