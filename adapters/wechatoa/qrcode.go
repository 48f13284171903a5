package wechatoa

import (
	"context"
	"fmt"
	"net/url"
	"time"
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
