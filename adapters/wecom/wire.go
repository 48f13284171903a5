package wecom

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Values of Message.MsgType, Message.Event and Message.ChangeType that the
// gateway acts on. WeCom sends others too; ParseMessage keeps them as they
// are.
const (
	MsgTypeText     = "text"
	MsgTypeImage    = "image"
	MsgTypeLocation = "location"
	MsgTypeEvent    = "event"

	// EventChangeExternalContact is a change to an employee's relationship
	// with a customer (客户联系 变更回调); ChangeType says which.
	EventChangeExternalContact = "change_external_contact"
	// EventChangeContact is a change to the corp's address book (通讯录
	// 变更回调); ChangeType says which (create_user, update_user,
	// delete_user, ...).
	EventChangeContact = "change_contact"
	// EventKfMsgOrEvent says a WeCom customer-service (微信客服) account has
	// new messages, to be fetched with sync_msg using Token.
	EventKfMsgOrEvent = "kf_msg_or_event"
	// EventChangeExternalTag is a change to the corp's customer tag
	// library (企业客户标签 变更回调): a tag or tag group created,
	// updated, deleted, or a group's tags reordered (shuffle); TagType
	// says which kind of thing, ChangeType what happened, ID which.
	EventChangeExternalTag = "change_external_tag"
	// EventChangeExternalChat is a change to a customer group (客户群
	// 变更回调): ChangeType create, update (UpdateDetail says what) or
	// dismiss.
	EventChangeExternalChat = "change_external_chat"
	// EventCustomerAcquisition is news of acquisition links (获客助手):
	// ChangeType balance_low, balance_exhausted, quota_expire_soon,
	// link_unavailable, delete_link or customer_start_chat; LinkID the
	// link, for those about one.
	EventCustomerAcquisition = "customer_acquisition"

	// ChangeTypeAddExternalContact: an employee added a customer.
	ChangeTypeAddExternalContact = "add_external_contact"
	// ChangeTypeAddHalfExternalContact: a customer added an employee who
	// skips verification (外部联系人免验证添加成员); the employee has not yet
	// confirmed.
	ChangeTypeAddHalfExternalContact = "add_half_external_contact"
	// ChangeTypeEditExternalContact: an employee edited a customer's remark or
	// tags.
	ChangeTypeEditExternalContact = "edit_external_contact"
	// ChangeTypeDelExternalContact: an employee deleted a customer.
	ChangeTypeDelExternalContact = "del_external_contact"
	// ChangeTypeDelFollowUser: a customer deleted an employee.
	ChangeTypeDelFollowUser = "del_follow_user"
	// ChangeTypeTransferFail: handing a customer over to another employee
	// failed; FailReason says why.
	ChangeTypeTransferFail = "transfer_fail"

	// ChangeTypeDeleteUser (of a change_contact event): an employee was
	// removed from the corp (left); UserID says who.
	ChangeTypeDeleteUser = "delete_user"
)

// Message is a decrypted WeCom callback: an event (MsgType "event") or a
// message an employee sent to the app. Fields a kind does not carry are
// empty.
type Message struct {
	// ToUserName is the corp id the callback is for.
	ToUserName string
	// FromUserName is the sending employee's userid; "sys" for system
	// events.
	FromUserName string
	// CreateTime is when WeCom created the message, in Unix seconds.
	CreateTime int64
	// MsgType is text, image, location, event, ...
	MsgType string
	// Event is the event type when MsgType is "event".
	Event string
	// AgentID is the receiving app's id, when WeCom sends it.
	AgentID string

	// ChangeType says what changed in a change_external_contact or
	// change_contact event.
	ChangeType string
	// UserID is the employee (guide) concerned by a contact event; for
	// transfer_fail it is the employee taking over; for a change_contact
	// event it is the employee created, updated or deleted.
	UserID string
	// ExternalUserID is the customer concerned by a contact event.
	ExternalUserID string
	// State is the "contact me" (联系我) state the customer came through,
	// for add_external_contact and add_half_external_contact.
	State string
	// WelcomeCode allows one welcome message within 20 seconds, for
	// add_external_contact and add_half_external_contact. It is absent when
	// the employee has a welcome message configured in WeCom.
	WelcomeCode string
	// Source is DELETE_BY_TRANSFER when a del_external_contact came from a
	// customer handover.
	Source string
	// FailReason is customer_refused or customer_limit_exceed for
	// transfer_fail.
	FailReason string

	// Token authorises a sync_msg call for a kf_msg_or_event event; it is
	// valid for 10 minutes.
	Token string
	// OpenKfID is the customer-service account that has new messages.
	OpenKfID string

	// ID is the tag or tag group of a change_external_tag event (the
	// group, or none, for a shuffle); TagType is "tag" or "tag_group";
	// StrategyID is the rule group (规则组) of a strategy tag.
	ID         string
	TagType    string
	StrategyID string

	// ChatID is the customer group of a change_external_chat event;
	// UpdateDetail what an update changed (add_member, del_member,
	// change_owner, change_name, change_notice); JoinScene and QuitScene
	// how members joined (1 invited, 2 link, 3 QR code) or left (0 left,
	// 1 removed by the owner); MemChangeList the members who did (a
	// newer field, absent from older callbacks); LastMemVer and
	// CurMemVer the member list's versions before and after.
	ChatID        string
	UpdateDetail  string
	JoinScene     int
	QuitScene     int
	MemChangeCnt  int
	MemChangeList []string
	LastMemVer    string
	CurMemVer     string

	// LinkID is the acquisition link of a customer_acquisition event.
	LinkID string

	// MsgID identifies an app message (a 64-bit integer, kept as text).
	MsgID string
	// Content is a text message's text.
	Content string
	// PicURL and MediaID are an image message's picture.
	PicURL  string
	MediaID string
	// Latitude (Location_X), Longitude (Location_Y), Scale (map zoom) and
	// Label (place description) are a location message's point.
	Latitude  float64
	Longitude float64
	Scale     int
	Label     string
}

// wireMessage is the decrypted callback XML as WeCom names its elements.
// Every field is text so that ParseMessage decides which ones must parse.
type wireMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	CreateTime   string   `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"`
	Event        string   `xml:"Event"`
	AgentID      string   `xml:"AgentID"`

	ChangeType     string `xml:"ChangeType"`
	UserID         string `xml:"UserID"`
	ExternalUserID string `xml:"ExternalUserID"`
	State          string `xml:"State"`
	WelcomeCode    string `xml:"WelcomeCode"`
	Source         string `xml:"Source"`
	FailReason     string `xml:"FailReason"`

	Token    string `xml:"Token"`
	OpenKfID string `xml:"OpenKfId"`

	ID         string `xml:"Id"`
	TagType    string `xml:"TagType"`
	StrategyID string `xml:"StrategyId"`

	ChatID       string `xml:"ChatId"`
	UpdateDetail string `xml:"UpdateDetail"`
	JoinScene    string `xml:"JoinScene"`
	QuitScene    string `xml:"QuitScene"`
	// MemChangeList (<MemChangeList><Item>…) is read apart
	// (memChangeList): the document is not flat then.
	MemChangeCnt string `xml:"MemChangeCnt"`
	LastMemVer   string `xml:"LastMemVer"`
	CurMemVer    string `xml:"CurMemVer"`
	LinkID       string `xml:"LinkId"`

	MsgID     string `xml:"MsgId"`
	Content   string `xml:"Content"`
	PicURL    string `xml:"PicUrl"`
	MediaID   string `xml:"MediaId"`
	LocationX string `xml:"Location_X"`
	LocationY string `xml:"Location_Y"`
	Scale     string `xml:"Scale"`
	Label     string `xml:"Label"`
}

// decode fills w from plain, on the fast path when the XML is flat.
func (w *wireMessage) decode(plain []byte) error {
	if scanFlat(plain, w.set) {
		return nil
	}
	*w = wireMessage{}
	return xml.Unmarshal(plain, w)
}

// set stores the text of the element called name, as encoding/xml would.
func (w *wireMessage) set(name, value []byte) {
	var f *string
	switch string(name) {
	case "ToUserName":
		f = &w.ToUserName
	case "FromUserName":
		f = &w.FromUserName
	case "CreateTime":
		f = &w.CreateTime
	case "MsgType":
		f = &w.MsgType
	case "Event":
		f = &w.Event
	case "AgentID":
		f = &w.AgentID
	case "ChangeType":
		f = &w.ChangeType
	case "UserID":
		f = &w.UserID
	case "ExternalUserID":
		f = &w.ExternalUserID
	case "State":
		f = &w.State
	case "WelcomeCode":
		f = &w.WelcomeCode
	case "Source":
		f = &w.Source
	case "FailReason":
		f = &w.FailReason
	case "Token":
		f = &w.Token
	case "OpenKfId":
		f = &w.OpenKfID
	case "Id":
		f = &w.ID
	case "TagType":
		f = &w.TagType
	case "StrategyId":
		f = &w.StrategyID
	case "ChatId":
		f = &w.ChatID
	case "UpdateDetail":
		f = &w.UpdateDetail
	case "JoinScene":
		f = &w.JoinScene
	case "QuitScene":
		f = &w.QuitScene
	case "MemChangeCnt":
		f = &w.MemChangeCnt
	case "LastMemVer":
		f = &w.LastMemVer
	case "CurMemVer":
		f = &w.CurMemVer
	case "LinkId":
		f = &w.LinkID
	case "MsgId":
		f = &w.MsgID
	case "Content":
		f = &w.Content
	case "PicUrl":
		f = &w.PicURL
	case "MediaId":
		f = &w.MediaID
	case "Location_X":
		f = &w.LocationX
	case "Location_Y":
		f = &w.LocationY
	case "Scale":
		f = &w.Scale
	case "Label":
		f = &w.Label
	default:
		return
	}
	*f = string(value)
}

// ParseMessage decodes the plaintext XML that Crypto.Decrypt returns. Errors
// wrap ErrMalformed. Unknown message and event kinds parse; only the fields
// that identify or locate a message are checked: MsgType must be present,
// CreateTime must be an integer when present, a location must be a valid
// WGS-84 point and a change_external_contact or change_contact event must
// carry ChangeType (and delete_user a UserID).
func ParseMessage(plain []byte) (*Message, error) {
	var w wireMessage
	if err := w.decode(plain); err != nil {
		return nil, fmt.Errorf("parsing callback message: %w: %w", ErrMalformed, err)
	}
	m := &Message{
		ToUserName:     w.ToUserName,
		FromUserName:   w.FromUserName,
		MsgType:        strings.TrimSpace(w.MsgType),
		Event:          strings.TrimSpace(w.Event),
		AgentID:        strings.TrimSpace(w.AgentID),
		ChangeType:     strings.TrimSpace(w.ChangeType),
		UserID:         w.UserID,
		ExternalUserID: w.ExternalUserID,
		State:          w.State,
		WelcomeCode:    w.WelcomeCode,
		Source:         w.Source,
		FailReason:     w.FailReason,
		Token:          w.Token,
		OpenKfID:       w.OpenKfID,
		ID:             strings.TrimSpace(w.ID),
		TagType:        strings.TrimSpace(w.TagType),
		StrategyID:     strings.TrimSpace(w.StrategyID),
		ChatID:         strings.TrimSpace(w.ChatID),
		UpdateDetail:   strings.TrimSpace(w.UpdateDetail),
		JoinScene:      atoiLoose(w.JoinScene),
		QuitScene:      atoiLoose(w.QuitScene),
		MemChangeCnt:   atoiLoose(w.MemChangeCnt),
		LastMemVer:     strings.TrimSpace(w.LastMemVer),
		CurMemVer:      strings.TrimSpace(w.CurMemVer),
		LinkID:         strings.TrimSpace(w.LinkID),
		MsgID:          strings.TrimSpace(w.MsgID),
		Content:        w.Content,
		PicURL:         w.PicURL,
		MediaID:        w.MediaID,
		Label:          w.Label,
	}
	if m.MsgType == "" {
		return nil, fmt.Errorf("parsing callback message: no MsgType: %w", ErrMalformed)
	}
	if s := strings.TrimSpace(w.CreateTime); s != "" {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil || t < 0 {
			return nil, fmt.Errorf("parsing callback message: CreateTime %q: %w", s, ErrMalformed)
		}
		m.CreateTime = t
	}
	if m.MsgType == MsgTypeEvent && (m.Event == EventChangeExternalContact || m.Event == EventChangeContact || m.Event == EventChangeExternalTag || m.Event == EventChangeExternalChat) && m.ChangeType == "" {
		return nil, fmt.Errorf("parsing callback message: %s without ChangeType: %w", m.Event, ErrMalformed)
	}
	if m.MsgType == MsgTypeEvent && m.Event == EventChangeContact && m.ChangeType == ChangeTypeDeleteUser && m.UserID == "" {
		return nil, fmt.Errorf("parsing callback message: delete_user without UserID: %w", ErrMalformed)
	}
	if m.MsgType == MsgTypeEvent && m.Event == EventChangeExternalChat {
		if m.ChatID == "" {
			return nil, fmt.Errorf("parsing callback message: change_external_chat without ChatId: %w", ErrMalformed)
		}
		if bytes.Contains(plain, []byte("<MemChangeList>")) {
			var l struct {
				Items []string `xml:"MemChangeList>Item"`
			}
			if err := xml.Unmarshal(plain, &l); err != nil {
				return nil, fmt.Errorf("parsing callback message: MemChangeList: %w: %w", ErrMalformed, err)
			}
			for _, it := range l.Items {
				if it = strings.TrimSpace(it); it != "" {
					m.MemChangeList = append(m.MemChangeList, it)
				}
			}
		}
	}
	if m.MsgType == MsgTypeLocation {
		if err := parseLocation(&w, m); err != nil {
			return nil, fmt.Errorf("parsing callback message: %w", err)
		}
	}
	return m, nil
}

// parseLocation fills the point of a location message.
func parseLocation(w *wireMessage, m *Message) error {
	lat, err := parseCoordinate("Location_X", w.LocationX, 90)
	if err != nil {
		return err
	}
	lng, err := parseCoordinate("Location_Y", w.LocationY, 180)
	if err != nil {
		return err
	}
	m.Latitude, m.Longitude = lat, lng
	if s := strings.TrimSpace(w.Scale); s != "" {
		scale, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("parsing Scale %q: %w", s, ErrMalformed)
		}
		m.Scale = scale
	}
	return nil
}

// parseCoordinate parses a latitude or longitude in degrees, at most limit
// away from zero.
func parseCoordinate(name, s string, limit float64) (float64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.Abs(v) > limit {
		return 0, fmt.Errorf("parsing %s %q: %w", name, s, ErrMalformed)
	}
	return v, nil
}

// DedupKey identifies the platform delivery, so that WeCom's retries of the
// same callback carry the same key:
//
//   - change_external_contact events: "evt:" + corp, CreateTime, ChangeType,
//     UserID and ExternalUserID, joined by ":" (WeCom ids never contain ":");
//   - change_contact events: "user:" + corp, CreateTime, ChangeType and
//     UserID, joined by ":";
//   - change_external_tag events: "tag:" + corp, CreateTime, ChangeType,
//     TagType, Id and StrategyId, joined by ":";
//   - change_external_chat events: "chat:" + corp, CreateTime, ChatId,
//     ChangeType, UpdateDetail and CurMemVer, joined by ":";
//   - customer_acquisition events: "acq:" + corp, CreateTime, ChangeType
//     and LinkId, joined by ":";
//   - kf_msg_or_event: "kf:" + Token;
//   - app messages: "msg:" + MsgId;
//   - anything else: "other:" + corp, AgentID, FromUserName, CreateTime,
//     MsgType and Event, joined by ":".
func (m *Message) DedupKey() string {
	ts := strconv.FormatInt(m.CreateTime, 10)
	switch {
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeExternalContact:
		return "evt:" + m.ToUserName + ":" + ts + ":" + m.ChangeType + ":" + m.UserID + ":" + m.ExternalUserID
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeContact:
		return "user:" + m.ToUserName + ":" + ts + ":" + m.ChangeType + ":" + m.UserID
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeExternalTag:
		return "tag:" + m.ToUserName + ":" + ts + ":" + m.ChangeType + ":" + m.TagType + ":" + m.ID + ":" + m.StrategyID
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeExternalChat:
		return "chat:" + m.ToUserName + ":" + ts + ":" + m.ChatID + ":" + m.ChangeType + ":" + m.UpdateDetail + ":" + m.CurMemVer
	case m.MsgType == MsgTypeEvent && m.Event == EventCustomerAcquisition:
		return "acq:" + m.ToUserName + ":" + ts + ":" + m.ChangeType + ":" + m.LinkID
	case m.MsgType == MsgTypeEvent && m.Event == EventKfMsgOrEvent && m.Token != "":
		return "kf:" + m.Token
	case m.MsgID != "":
		return "msg:" + m.MsgID
	default:
		return "other:" + m.ToUserName + ":" + m.AgentID + ":" + m.FromUserName + ":" + ts + ":" + m.MsgType + ":" + m.Event
	}
}

// atoiLoose is s as an integer, 0 when it is not one (a count or scene
// WeCom added later, never worth refusing a callback for).
func atoiLoose(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return n
}
