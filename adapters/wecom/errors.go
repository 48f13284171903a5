package wecom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// tokenCodes are the errcodes that say the access token was refused: the
// call is retried once with a fresh token.
var tokenCodes = map[int]bool{
	40014: true, // 不合法的access_token
	42001: true, // access_token已过期
	41001: true, // 缺少access_token参数
	40001: true, // 不合法的secret参数 (gettoken); "invalid credential" elsewhere
}

// codeKinds maps WeCom errcodes onto the adapters sentinels. Codes not
// listed map to a nil Kind: a request WeCom will refuse again, not worth a
// retry. Descriptions are from WeCom's 全局错误码 page (document 90313) and
// the endpoint pages cited.
var codeKinds = map[int]error{
	// System busy, retry (建议重试次数不超过3次).
	-1: adapters.ErrTemporary,
	// 数据版本冲突: several callers changed the data at once, retry later.
	6000: adapters.ErrTemporary,
	// 群发消息正在被派发中，请稍后再试 (a result asked for right after
	// add_msg_template).
	41063: adapters.ErrTemporary,
	// welcome msg is being distributed: another app of the corp is sending
	// the welcome now; it may still fail, so retrying is allowed
	// (send_welcome_msg, document 92137).
	41096: adapters.ErrTemporary,

	// Token and credential refusals. 40014, 42001, 41001 and 40001 are
	// retried once with a new token first.
	40014:  adapters.ErrUnauthorized, // 不合法的access_token
	42001:  adapters.ErrUnauthorized, // access_token已过期
	41001:  adapters.ErrUnauthorized, // 缺少access_token参数
	40001:  adapters.ErrUnauthorized, // 不合法的secret参数
	40013:  adapters.ErrUnauthorized, // 不合法的CorpID
	40091:  adapters.ErrUnauthorized, // secret不合法 (another corp's secret)
	41004:  adapters.ErrUnauthorized, // 缺少secret参数
	48002:  adapters.ErrUnauthorized, // API接口无权限调用 (app not allowed to call it)
	60020:  adapters.ErrUnauthorized, // 访问ip不在白名单之中
	301002: adapters.ErrUnauthorized, // 无权限操作指定的应用 (token of another agent)

	// Frequency limits: back off and retry.
	45009: adapters.ErrRateLimited, // 接口调用超过限制
	45033: adapters.ErrRateLimited, // 接口并发调用超过限制
	45011: adapters.ErrRateLimited, // api minute-quota reach limit (WeChat platform code)
	45035: adapters.ErrRateLimited, // named in issue 3; not in the 90313 list we could read

	// The recipient (or the guide reaching them) cannot be reached:
	// retrying will not help.
	40003:  adapters.ErrInvalidRecipient, // 无效的UserID
	40031:  adapters.ErrInvalidRecipient, // 不合法的UserID列表
	40096:  adapters.ErrInvalidRecipient, // 不合法的外部联系人userid
	40050:  adapters.ErrInvalidRecipient, // 不合法的chatid (a customer group dismissed or unknown)
	40098:  adapters.ErrInvalidRecipient, // 成员尚未实名认证
	40099:  adapters.ErrInvalidRecipient, // 外部联系人的数量已达上限
	41048:  adapters.ErrInvalidRecipient, // 无可发送的客户
	41050:  adapters.ErrInvalidRecipient, // 无效的欢迎语code (20 seconds, used once)
	41051:  adapters.ErrInvalidRecipient, // 客户和服务人员已经开始聊天了 (welcome already delivered)
	41053:  adapters.ErrInvalidRecipient, // 客户未同意聊天存档
	41054:  adapters.ErrInvalidRecipient, // 该用户尚未激活
	41056:  adapters.ErrInvalidRecipient, // 外部联系人id类型不正确
	46004:  adapters.ErrInvalidRecipient, // 指定的用户不存在
	50002:  adapters.ErrInvalidRecipient, // 成员不在权限范围
	60011:  adapters.ErrInvalidRecipient, // 指定的成员/部门/标签参数无权限
	60021:  adapters.ErrInvalidRecipient, // userid不在应用可见范围内
	60111:  adapters.ErrInvalidRecipient, // UserID不存在
	81013:  adapters.ErrInvalidRecipient, // UserID、部门ID、标签ID全部非法或无权限
	84061:  adapters.ErrInvalidRecipient, // 不存在外部联系人的关系
	84074:  adapters.ErrInvalidRecipient, // 没有外部联系人权限
	92000:  adapters.ErrInvalidRecipient, // 成员不在应用可见范围之内
	95018:  adapters.ErrInvalidRecipient, // send msg session status invalid (kf: no open session, 48h / 5 messages)
	610004: adapters.ErrInvalidRecipient, // userid不在客户联系配置的使用范围内

	// The message cannot be sent as it is: retrying will not help.
	40004: adapters.ErrInvalidMessage, // 不合法的媒体文件类型 (media/upload)
	40005: adapters.ErrInvalidMessage, // 不合法的文件类型 (media/upload: not a JPG or PNG image)
	40006: adapters.ErrInvalidMessage, // 不合法的文件大小 (media/upload)
	40007: adapters.ErrInvalidMessage, // 不合法的媒体文件id (unknown, or expired after 3 days)
	40009: adapters.ErrInvalidMessage, // 图片文件大小不合法 (media/upload: over 10 MB)
	41005: adapters.ErrInvalidMessage, // 缺少多媒体文件数据 (media/upload)
}

// Kind returns the sentinel a WeCom errcode maps onto, or nil.
func Kind(code int) error { return codeKinds[code] }

// WelcomeAlreadySent reports whether err is WeCom's 41051 on
// send_welcome_msg: the welcome was already delivered (by an earlier try,
// or by another app), so there is nothing left to do.
func WelcomeAlreadySent(err error) bool {
	var e *adapters.APIError
	return errors.As(err, &e) && e.Code == 41051
}

func newAPIError(code int64, msg string) *adapters.APIError {
	return &adapters.APIError{Channel: "wecom", Code: int(code), Message: redact(msg), Kind: codeKinds[int(code)]}
}

// transportError is a failed HTTP exchange with WeCom, its text stripped
// of access tokens and secrets.
type transportError struct {
	msg     string
	status  int
	timeout bool
	ctxErr  error
	// refused: the connection was refused, so nothing was sent.
	refused bool
	// inDoubt: the call itself failed this way after its request may
	// have reached WeCom (see InDoubt).
	inDoubt bool
}

func (e *transportError) Error() string { return "wecom request failed: " + e.msg }

func (e *transportError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{adapters.ErrTemporary, e.ctxErr}
	}
	return []error{adapters.ErrTemporary}
}

// InDoubt reports whether a failed call may have been carried out by
// WeCom all the same: its request went out and no errcode came back (a
// timeout, an HTTP 5xx, a dropped connection, an unreadable answer). An
// errcode, a refused connection or a failure to get the access token
// are not in doubt: WeCom did nothing.
func InDoubt(err error) bool {
	var te *transportError
	return errors.As(err, &te) && te.inDoubt
}

// Timeout reports whether the request timed out.
func (e *transportError) Timeout() bool { return e.timeout }

// HTTPStatus is the HTTP status WeCom answered, or 0 when there was none.
func (e *transportError) HTTPStatus() int { return e.status }

var (
	// credentialRE finds credentials in URLs and error texts.
	credentialRE = regexp.MustCompile(`(?i)\b(access_token|corpsecret|secret)=[^&\s"'<>,]*`)
	// statusRE finds the HTTP status in the SDK's "http get error : uri=...
	// , statusCode=500" errors.
	statusRE = regexp.MustCompile(`statusCode=(\d{3})`)
)

// redact masks access tokens and secrets in s.
func redact(s string) string {
	return credentialRE.ReplaceAllString(s, "$1=REDACTED")
}

// unreadable is an answer that is not WeCom's JSON (a proxy's HTML page,
// a truncated body).
func unreadable(err error) error {
	return &transportError{msg: "unreadable answer: " + redact(err.Error())}
}

// classify turns what the SDK or net/http returned into an error that is
// safe to print and wraps the right sentinel.
func classify(err error) error {
	var common *util.CommonError
	if errors.As(err, &common) {
		return newAPIError(common.ErrCode, common.ErrMsg)
	}
	var apiErr *adapters.APIError
	if errors.As(err, &apiErr) {
		return err
	}
	var te *transportError
	if errors.As(err, &te) {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		e := &transportError{
			msg:     redact(fmt.Sprintf("%s %q: %s", ue.Op, ue.URL, ue.Err)),
			timeout: ue.Timeout(),
			refused: errors.Is(ue.Err, syscall.ECONNREFUSED),
		}
		switch {
		case errors.Is(ue.Err, context.Canceled):
			e.ctxErr = context.Canceled
		case errors.Is(ue.Err, context.DeadlineExceeded):
			e.ctxErr = context.DeadlineExceeded
		}
		return e
	}
	msg := redact(err.Error())
	if m := statusRE.FindStringSubmatch(msg); m != nil {
		status, _ := strconv.Atoi(m[1])
		return &transportError{msg: fmt.Sprintf("http status %d", status), status: status}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) || strings.HasPrefix(msg, "json Unmarshal Error") {
		return &transportError{msg: "unreadable answer: " + msg}
	}
	return &transportError{msg: msg}
}
