package wecom

import (
	"context"

	"github.com/silenceper/wechat/v2/util"
)

// ContactWayType says how many employees a contact way reaches.
type ContactWayType int

// Contact way types.
const (
	ContactWaySingle ContactWayType = 1 // one employee
	ContactWayMulti  ContactWayType = 2 // several employees, WeCom picks one
)

// Contact way scenes.
const (
	SceneMiniProgram = 1 // a button in a miniprogram
	SceneQRCode      = 2 // a QR code
)

// maxContactWayState is WeCom's limit for a contact way's state.
const maxContactWayState = 30

// ContactWay is a "contact me" (联系我, 渠道活码) configuration.
type ContactWay struct {
	Type ContactWayType
	// Scene is SceneQRCode (the default) or SceneMiniProgram.
	Scene int
	// Users are the employees' userids: exactly one for ContactWaySingle,
	// at most 100 for ContactWayMulti.
	Users []string
	// State comes back in add_external_contact events and in
	// externalcontact/get, naming the store or guide: at most 30
	// characters.
	State  string
	Remark string
	// RequireVerify makes customers wait for the employee to accept them.
	// The default (false) is WeCom's: customers are added at once.
	RequireVerify bool
}

type contactWayRequest struct {
	Type       int      `json:"type"`
	Scene      int      `json:"scene"`
	Remark     string   `json:"remark,omitempty"`
	SkipVerify bool     `json:"skip_verify"`
	State      string   `json:"state,omitempty"`
	User       []string `json:"user"`
}

type contactWayResponse struct {
	util.CommonError
	ConfigID string `json:"config_id"`
	QRCode   string `json:"qr_code"`
}

// AddContactWay creates a contact way (externalcontact/add_contact_way)
// and returns its config id and, for a QR code, the code's image URL.
func (a *API) AddContactWay(ctx context.Context, w ContactWay) (configID, qrCode string, err error) {
	const op = "adding contact way"
	if w.Scene == 0 {
		w.Scene = SceneQRCode
	}
	switch {
	case w.Type != ContactWaySingle && w.Type != ContactWayMulti:
		return "", "", invalidRequest(op, "type %d, want 1 (single) or 2 (multi)", w.Type)
	case w.Scene != SceneQRCode && w.Scene != SceneMiniProgram:
		return "", "", invalidRequest(op, "scene %d, want 1 (miniprogram) or 2 (qr code)", w.Scene)
	case w.Type == ContactWaySingle && len(w.Users) != 1:
		return "", "", invalidRequest(op, "a single contact way needs exactly one user, got %d", len(w.Users))
	case len([]rune(w.State)) > maxContactWayState:
		return "", "", invalidRequest(op, "state %q is longer than %d characters", w.State, maxContactWayState)
	}
	if err := checkIDs(op, "users", w.Users, 100); err != nil {
		return "", "", err
	}
	req := contactWayRequest{
		Type:       int(w.Type),
		Scene:      w.Scene,
		Remark:     w.Remark,
		SkipVerify: !w.RequireVerify,
		State:      w.State,
		User:       w.Users,
	}
	var res contactWayResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/add_contact_way", req, &res); err != nil {
		return "", "", err
	}
	return res.ConfigID, res.QRCode, nil
}
