package wecom

import (
	"context"
	"log/slog"
	"net/url"
	"time"

	"github.com/silenceper/wechat/v2/work/externalcontact"
)

// ContactType says who a customer is.
type ContactType int

// Contact types of externalcontact/get.
const (
	ContactWeChat ContactType = 1 // a WeChat user (a member)
	ContactWeCom  ContactType = 2 // an employee of another WeCom corp
)

// Gender of a customer as WeChat reports it.
type Gender int

// Genders of externalcontact/get.
const (
	GenderUnknown Gender = 0
	GenderMale    Gender = 1
	GenderFemale  Gender = 2
)

// Contact is a customer (external contact) of the corp and the employees
// who added them (externalcontact/get).
type Contact struct {
	ExternalUserID string
	Name           string
	Avatar         string
	Type           ContactType
	Gender         Gender
	// UnionID identifies the WeChat user across the developer's apps; WeCom
	// sends it only when the corp has bound a WeChat developer account.
	UnionID     string
	FollowUsers []FollowUser
}

// FollowUser is an employee who added the customer.
type FollowUser struct {
	UserID      string
	Remark      string
	Description string
	CreateTime  time.Time
	// State is the "contact me" state the customer came through, when they
	// came through one.
	State string
	// RemarkMobiles are phone numbers the employee recorded for the
	// customer, as typed.
	RemarkMobiles []string
	// AddWay is how the customer was added (1 QR code, 2 phone search, ...).
	AddWay     int
	OperUserID string
	TagIDs     []string
	// TagNames are the names of the corp's tags (type 1) the employee
	// put on the customer.
	TagNames []string
}

// FollowUser returns the employee userID's relationship, if they follow
// the customer.
func (c *Contact) FollowUser(userID string) (FollowUser, bool) {
	for _, f := range c.FollowUsers {
		if f.UserID == userID {
			return f, true
		}
	}
	return FollowUser{}, false
}

// maxFollowUserPages bounds the next_cursor walk of ExternalContact (WeCom
// pages follow_user by 500).
const maxFollowUserPages = 20

// ExternalContact returns a customer and the employees who added them
// (externalcontact/get, walking next_cursor when they have more than 500).
// 84061 (not an external contact of the corp) is ErrInvalidRecipient.
func (a *API) ExternalContact(ctx context.Context, externalUserID string) (*Contact, error) {
	op := "getting external contact " + externalUserID
	if externalUserID == "" {
		return nil, noRecipient("getting external contact", "external user id")
	}
	ec := a.contact.GetExternalContact()
	var c *Contact
	cursor := ""
	for page := 0; page < maxFollowUserPages; page++ {
		var res *externalcontact.ExternalUserDetailResponse
		err := a.do(ctx, a.contTok, op, func(string) error {
			var err error
			res, err = ec.GetExternalUserDetail(url.QueryEscape(externalUserID), url.QueryEscape(cursor))
			return err
		})
		if err != nil {
			return nil, err
		}
		if c == nil {
			u := res.ExternalContact
			c = &Contact{
				ExternalUserID: u.ExternalUserID,
				Name:           u.Name,
				Avatar:         u.Avatar,
				Type:           ContactType(u.Type),
				Gender:         Gender(u.Gender),
				UnionID:        u.UnionID,
			}
		}
		for _, f := range res.FollowUser {
			fu := FollowUser{
				UserID:        f.UserID,
				Remark:        f.Remark,
				Description:   f.Description,
				State:         f.State,
				RemarkMobiles: f.RemarkMobiles,
				AddWay:        int(f.AddWay),
				OperUserID:    f.OperUserID,
			}
			if f.CreateTime > 0 {
				fu.CreateTime = time.Unix(f.CreateTime, 0)
			}
			for _, t := range f.Tags {
				// Employees' personal tags (type 2) have no id.
				if t.TagID != "" {
					fu.TagIDs = append(fu.TagIDs, t.TagID)
					if t.TagName != "" {
						fu.TagNames = append(fu.TagNames, t.TagName)
					}
				}
			}
			c.FollowUsers = append(c.FollowUsers, fu)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			return c, nil
		}
		cursor = res.NextCursor
	}
	a.log.Warn("wecom external contact has more follow users than read", slog.String("external_user_id", externalUserID))
	return c, nil
}
