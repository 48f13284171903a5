package wechatoa

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// QRCode is a parametric QR code (qrcode/create).
type QRCode struct {
	Ticket string
	// URL is what the code encodes; ImageURL shows it
	// (showqrcode?ticket=...).
	URL      string
	ImageURL string
	// Expires is when a temporary code stops working; zero for a
	// permanent one.
	Expires time.Time
}

// maxSceneLen is WeChat's limit on a scene_str.
const maxSceneLen = 64

// CreateQRCode creates a parametric QR code whose scans and follows
// carry scene: a contact-way state such as "s:<store>" or "g:<guide>",
// which binds the follower like a WeCom contact way. expire 0 makes a
// permanent code (QR_LIMIT_STR_SCENE, at most 100,000 an account),
// otherwise a temporary one (QR_STR_SCENE, at most 30 days).
func (c *Client) CreateQRCode(ctx context.Context, scene string, expire time.Duration) (*QRCode, error) {
	if scene == "" || len(scene) > maxSceneLen {
		return nil, fmt.Errorf("scene_str of %d bytes: want 1 to %d", len(scene), maxSceneLen)
	}
	type sceneStr struct {
		SceneStr string `json:"scene_str"`
	}
	body := struct {
		ExpireSeconds int    `json:"expire_seconds,omitempty"`
		ActionName    string `json:"action_name"`
		ActionInfo    struct {
			Scene sceneStr `json:"scene"`
		} `json:"action_info"`
	}{ActionName: "QR_LIMIT_STR_SCENE"}
	if expire > 0 {
		body.ExpireSeconds, body.ActionName = int(expire/time.Second), "QR_STR_SCENE"
	}
	body.ActionInfo.Scene.SceneStr = scene
	var out struct {
		apiError
		Ticket        string `json:"ticket"`
		ExpireSeconds int    `json:"expire_seconds"`
		URL           string `json:"url"`
	}
	if err := c.call(ctx, "/cgi-bin/qrcode/create", nil, body, &out); err != nil {
		return nil, fmt.Errorf("creating qr code for %s: %w", scene, err)
	}
	q := &QRCode{Ticket: out.Ticket, URL: out.URL,
		ImageURL: "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=" + url.QueryEscape(out.Ticket)}
	if out.ExpireSeconds > 0 {
		q.Expires = c.now().Add(time.Duration(out.ExpireSeconds) * time.Second)
	}
	return q, nil
}

// maxTemporaryQRCode is WeChat's longest temporary code: 30 days.
const maxTemporaryQRCode = 30 * 24 * time.Hour

// CreateContactWay makes the permanent parametric QR code of a store's
// or a guide's contact-way state, for the API's contact ways: whoever
// scans it and follows is bound by the state like a WeCom contact way's
// (the inbox resolves "s:", "g:" and hashed states alike). An account's
// code routes the follower to no one on the account, so users is not
// used (ContactWayGuides). configID is the code's ticket and qrCode the
// URL of its picture.
func (c *Client) CreateContactWay(ctx context.Context, users []string, state, remark string) (configID, qrCode string, err error) {
	q, err := c.CreateQRCode(ctx, state, 0)
	if err != nil {
		return "", "", err
	}
	return q.Ticket, q.ImageURL, nil
}

// ContactWayGuides reports that the account's codes need no guide ids:
// they carry only their state.
func (c *Client) ContactWayGuides() bool { return false }

// CreateTemporaryContactWay makes a temporary parametric QR code of
// state that works for ttl (WeChat allows up to 30 days); a ttl out of
// that range is adapters.ErrInvalidMessage.
func (c *Client) CreateTemporaryContactWay(ctx context.Context, state string, ttl time.Duration) (configID, qrCode string, expires time.Time, err error) {
	if ttl < time.Minute || ttl > maxTemporaryQRCode {
		return "", "", time.Time{}, fmt.Errorf("%w: a temporary QR code lasts from 1 minute to 30 days, not %s", adapters.ErrInvalidMessage, ttl)
	}
	q, err := c.CreateQRCode(ctx, state, ttl)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return q.Ticket, q.ImageURL, q.Expires, nil
}
