package wecomfake

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Callback builds the requests WeCom sends to an app's callback URL,
// signed and encrypted with the app's callback settings. The zero value of
// a field means its default: DefaultToken, DefaultEncodingAESKey,
// DefaultCorpID, time.Now.
type Callback struct {
	Token          string
	EncodingAESKey string
	CorpID         string
	// AgentID goes in the envelope's AgentID (WeCom sends the app's agent
	// id for app messages and leaves it empty for customer-contact
	// events). It is not signed.
	AgentID string
	// Now is the clock of the timestamp parameter.
	Now func() time.Time
}

func (c Callback) withDefaults() Callback {
	if c.Token == "" {
		c.Token = DefaultToken
	}
	if c.EncodingAESKey == "" {
		c.EncodingAESKey = DefaultEncodingAESKey
	}
	if c.CorpID == "" {
		c.CorpID = DefaultCorpID
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// sealed is what Crypto.Encrypt returns: the passive-reply envelope.
type sealed struct {
	Encrypt      string `xml:"Encrypt"`
	MsgSignature string `xml:"MsgSignature"`
	TimeStamp    string `xml:"TimeStamp"`
	Nonce        string `xml:"Nonce"`
}

// Nonce returns a nonce like WeCom's: a decimal number.
func Nonce() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e10))
	if err != nil {
		return "1372623149"
	}
	return n.String()
}

// Encrypt seals plain for the corp and signs it over timestamp and nonce:
// it returns the encrypted string and its msg_signature.
func (c Callback) Encrypt(plain []byte, timestamp, nonce string) (encrypt, msgSignature string, err error) {
	c = c.withDefaults()
	cr, err := wecom.NewCrypto(c.Token, c.EncodingAESKey, c.CorpID)
	if err != nil {
		return "", "", err
	}
	out, err := cr.Encrypt(plain, timestamp, nonce)
	if err != nil {
		return "", "", err
	}
	var env sealed
	if err := xml.Unmarshal(out, &env); err != nil {
		return "", "", fmt.Errorf("reading sealed envelope: %w", err)
	}
	return env.Encrypt, env.MsgSignature, nil
}

// Seal builds a callback POST for the decrypted message msg: the body
// envelope <xml><ToUserName/><AgentID/><Encrypt/></xml> and the query
// msg_signature, timestamp and nonce.
func (c Callback) Seal(msg []byte) (body []byte, query url.Values, err error) {
	c = c.withDefaults()
	ts, nonce := strconv.FormatInt(c.Now().Unix(), 10), Nonce()
	encrypt, sig, err := c.Encrypt(msg, ts, nonce)
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	b.WriteString("<xml><ToUserName>")
	writeCDATA(&b, c.CorpID)
	b.WriteString("</ToUserName><AgentID>")
	writeCDATA(&b, c.AgentID)
	b.WriteString("</AgentID><Encrypt>")
	writeCDATA(&b, encrypt)
	b.WriteString("</Encrypt></xml>")
	query = url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
	return b.Bytes(), query, nil
}

// Request builds the POST WeCom sends to the callback URL target for the
// decrypted message msg (e.g. ContactChange.XML()).
func (c Callback) Request(target string, msg []byte) (*http.Request, error) {
	body, query, err := c.Seal(msg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, withQuery(target, query), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	return req, nil
}

// VerifyURLRequest builds the GET WeCom sends to verify the callback URL
// target when it is saved; the handler must answer with echo.
func (c Callback) VerifyURLRequest(target string) (req *http.Request, echo string, err error) {
	c = c.withDefaults()
	echo = Nonce() + Nonce()
	ts, nonce := strconv.FormatInt(c.Now().Unix(), 10), Nonce()
	encrypt, sig, err := c.Encrypt([]byte(echo), ts, nonce)
	if err != nil {
		return nil, "", err
	}
	q := url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {encrypt}}
	req, err = http.NewRequest(http.MethodGet, withQuery(target, q), nil)
	return req, echo, err
}

func withQuery(target string, q url.Values) string {
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	return target + sep + q.Encode()
}

// writeCDATA writes s as CDATA sections, splitting "]]>".
func writeCDATA(b *bytes.Buffer, s string) {
	b.WriteString("<![CDATA[")
	b.WriteString(strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]>")
}

// xmlDoc writes a flat callback document.
type xmlDoc struct{ b bytes.Buffer }

func newDoc() *xmlDoc {
	d := &xmlDoc{}
	d.b.WriteString("<xml>")
	return d
}

func (d *xmlDoc) text(name, v string) *xmlDoc {
	d.b.WriteString("<" + name + ">")
	writeCDATA(&d.b, v)
	d.b.WriteString("</" + name + ">")
	return d
}

func (d *xmlDoc) textIf(name, v string) *xmlDoc {
	if v != "" {
		d.text(name, v)
	}
	return d
}

func (d *xmlDoc) num(name, v string) *xmlDoc {
	d.b.WriteString("<" + name + ">" + v + "</" + name + ">")
	return d
}

func (d *xmlDoc) bytes() []byte {
	d.b.WriteString("</xml>")
	return d.b.Bytes()
}

func unix(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return strconv.FormatInt(t.Unix(), 10)
}

// ContactChange is a change_external_contact event (客户联系 变更回调).
type ContactChange struct {
	// CorpID is ToUserName; default DefaultCorpID.
	CorpID string
	// ChangeType is add_external_contact, add_half_external_contact,
	// edit_external_contact, del_external_contact, del_follow_user or
	// transfer_fail.
	ChangeType     string
	UserID         string
	ExternalUserID string
	// State and WelcomeCode come with the add_* kinds.
	State       string
	WelcomeCode string
	// Source is DELETE_BY_TRANSFER on a del_external_contact after a
	// handover.
	Source string
	// FailReason is customer_refused or customer_limit_exceed on
	// transfer_fail.
	FailReason string
	// CreateTime defaults to now.
	CreateTime time.Time
}

// XML returns the decrypted callback message.
func (e ContactChange) XML() []byte {
	corp := e.CorpID
	if corp == "" {
		corp = DefaultCorpID
	}
	d := newDoc().text("ToUserName", corp).text("FromUserName", "sys").num("CreateTime", unix(e.CreateTime)).
		text("MsgType", "event").text("Event", wecom.EventChangeExternalContact).text("ChangeType", e.ChangeType)
	if e.FailReason != "" {
		d.text("FailReason", e.FailReason)
	}
	d.text("UserID", e.UserID).text("ExternalUserID", e.ExternalUserID)
	d.textIf("State", e.State).textIf("WelcomeCode", e.WelcomeCode).textIf("Source", e.Source)
	return d.bytes()
}

// AddExternalContact is an employee adding a customer (or a customer
// adding an employee through a contact way with state).
func AddExternalContact(userID, externalUserID, state, welcomeCode string) ContactChange {
	return ContactChange{ChangeType: wecom.ChangeTypeAddExternalContact, UserID: userID, ExternalUserID: externalUserID,
		State: state, WelcomeCode: welcomeCode}
}

// AddHalfExternalContact is a customer adding an employee who skips
// verification, before the employee confirms.
func AddHalfExternalContact(userID, externalUserID, state, welcomeCode string) ContactChange {
	return ContactChange{ChangeType: wecom.ChangeTypeAddHalfExternalContact, UserID: userID, ExternalUserID: externalUserID,
		State: state, WelcomeCode: welcomeCode}
}

// EditExternalContact is an employee editing a customer's remark or tags.
func EditExternalContact(userID, externalUserID string) ContactChange {
	return ContactChange{ChangeType: wecom.ChangeTypeEditExternalContact, UserID: userID, ExternalUserID: externalUserID}
}

// DelExternalContact is an employee deleting a customer.
func DelExternalContact(userID, externalUserID string) ContactChange {
	return ContactChange{ChangeType: wecom.ChangeTypeDelExternalContact, UserID: userID, ExternalUserID: externalUserID}
}

// DelFollowUser is a customer deleting an employee.
func DelFollowUser(userID, externalUserID string) ContactChange {
	return ContactChange{ChangeType: wecom.ChangeTypeDelFollowUser, UserID: userID, ExternalUserID: externalUserID}
}

// TransferFail is a handover to takeoverUserID that failed for reason
// (customer_refused, customer_limit_exceed).
func TransferFail(takeoverUserID, externalUserID, reason string) ContactChange {
	return ContactChange{ChangeType: wecom.ChangeTypeTransferFail, UserID: takeoverUserID, ExternalUserID: externalUserID,
		FailReason: reason}
}

// UserChange is a change_contact event (通讯录 变更回调) about an
// employee.
type UserChange struct {
	// CorpID is ToUserName; default DefaultCorpID.
	CorpID string
	// ChangeType is create_user, update_user or delete_user.
	ChangeType string
	UserID     string
	// CreateTime defaults to now.
	CreateTime time.Time
}

// XML returns the decrypted callback message. ChangeType is plain text,
// as WeCom's address-book events carry it.
func (e UserChange) XML() []byte {
	corp := e.CorpID
	if corp == "" {
		corp = DefaultCorpID
	}
	return newDoc().text("ToUserName", corp).text("FromUserName", "sys").num("CreateTime", unix(e.CreateTime)).
		text("MsgType", "event").text("Event", wecom.EventChangeContact).num("ChangeType", e.ChangeType).
		text("UserID", e.UserID).bytes()
}

// DeleteUser is an employee removed from the corp (they left).
func DeleteUser(userID string) UserChange {
	return UserChange{ChangeType: wecom.ChangeTypeDeleteUser, UserID: userID}
}

// KfMsgOrEvent is the kf_msg_or_event callback: a customer-service account
// has messages to read with sync_msg and Token.
type KfMsgOrEvent struct {
	CorpID     string
	Token      string
	OpenKfID   string
	CreateTime time.Time
}

// XML returns the decrypted callback message.
func (e KfMsgOrEvent) XML() []byte {
	corp := e.CorpID
	if corp == "" {
		corp = DefaultCorpID
	}
	return newDoc().text("ToUserName", corp).num("CreateTime", unix(e.CreateTime)).text("MsgType", "event").
		text("Event", wecom.EventKfMsgOrEvent).text("Token", e.Token).text("OpenKfId", e.OpenKfID).bytes()
}

// EmployeeMessage is a message an employee sent to the app: text, location
// or image.
type EmployeeMessage struct {
	CorpID     string
	AgentID    string
	FromUserID string
	// MsgID is WeCom's 64-bit message id, as text; default a random one.
	MsgID      string
	CreateTime time.Time
	MsgType    string
	// Content is a text's.
	Content string
	// Latitude, Longitude, Scale and Label are a location's.
	Latitude  float64
	Longitude float64
	Scale     int
	Label     string
	// PicURL and MediaID are an image's.
	PicURL  string
	MediaID string
}

// EmployeeText is a text an employee sent to the app.
func EmployeeText(agentID, fromUserID, content string) EmployeeMessage {
	return EmployeeMessage{AgentID: agentID, FromUserID: fromUserID, MsgType: wecom.MsgTypeText, Content: content}
}

// EmployeeLocation is a location an employee shared with the app.
func EmployeeLocation(agentID, fromUserID string, lat, lng float64, label string) EmployeeMessage {
	return EmployeeMessage{AgentID: agentID, FromUserID: fromUserID, MsgType: wecom.MsgTypeLocation,
		Latitude: lat, Longitude: lng, Scale: 15, Label: label}
}

// EmployeeImage is a picture an employee sent to the app.
func EmployeeImage(agentID, fromUserID, picURL, mediaID string) EmployeeMessage {
	return EmployeeMessage{AgentID: agentID, FromUserID: fromUserID, MsgType: wecom.MsgTypeImage, PicURL: picURL, MediaID: mediaID}
}

// XML returns the decrypted callback message.
func (m EmployeeMessage) XML() []byte {
	corp := m.CorpID
	if corp == "" {
		corp = DefaultCorpID
	}
	id := m.MsgID
	if id == "" {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		id = n.String()
	}
	d := newDoc().text("ToUserName", corp).text("FromUserName", m.FromUserID).num("CreateTime", unix(m.CreateTime)).
		text("MsgType", m.MsgType)
	switch m.MsgType {
	case wecom.MsgTypeText:
		d.text("Content", m.Content)
	case wecom.MsgTypeLocation:
		d.num("Location_X", strconv.FormatFloat(m.Latitude, 'f', -1, 64)).
			num("Location_Y", strconv.FormatFloat(m.Longitude, 'f', -1, 64)).
			num("Scale", strconv.Itoa(m.Scale)).text("Label", m.Label)
	case wecom.MsgTypeImage:
		d.text("PicUrl", m.PicURL).text("MediaId", m.MediaID)
	}
	return d.num("MsgId", id).num("AgentID", m.AgentID).bytes()
}
