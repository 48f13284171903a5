// Package wecomfake fakes WeCom (企业微信) for tests: a local server
// speaking the server API's wire protocol, and a builder of callbacks
// signed and encrypted exactly as WeCom sends them.
//
// # Server API
//
// [Server] is an httptest server standing in for https://qyapi.weixin.qq.com.
// It serves
//
//	GET  /cgi-bin/gettoken?corpid=&corpsecret=
//	GET  /cgi-bin/externalcontact/get?access_token=&external_userid=&cursor=
//	POST /cgi-bin/externalcontact/send_welcome_msg
//	POST /cgi-bin/externalcontact/add_msg_template
//	POST /cgi-bin/externalcontact/get_groupmsg_send_result
//	POST /cgi-bin/externalcontact/cancel_groupmsg_send
//	POST /cgi-bin/externalcontact/get_groupmsg_list_v2
//	POST /cgi-bin/externalcontact/add_contact_way
//	POST /cgi-bin/externalcontact/transfer_customer
//	POST /cgi-bin/externalcontact/resigned/transfer_customer
//	POST /cgi-bin/externalcontact/resigned/transfer_result
//	POST /cgi-bin/kf/sync_msg
//	POST /cgi-bin/kf/send_msg
//	POST /cgi-bin/message/send
//	POST /cgi-bin/media/upload?access_token=&type=   (multipart, part "media")
//
// with access_token in the query string, and answers as WeCom does: HTTP 200
// with {"errcode", "errmsg", ...}, errcode 0 on success. The success bodies
// start from the responses recorded from WeCom's documentation in
// adapters/wecom/testdata/api (the fake overrides the fields it computes:
// ids, lists, cursors), and error messages follow WeCom's
// "<text>, hint: [...], from ip: ..., more info at ..." form.
//
// gettoken issues one token per secret, valid for 7200 seconds (within
// its validity, asking again returns the same token, as WeCom does); a
// wrong corpid is 40013, a wrong secret 40001. A token works only for the
// APIs of its secret: the app Secret for message/send and kf/*, the
// customer-contact secret for externalcontact/* (48002 otherwise; one
// secret serves both when they are equal). Every other call checks its
// token: missing 41001, unknown 40014, expired 42001 ([Server.ExpireTokens]
// expires them all).
//
// Request bodies are decoded strictly (an unknown field or a wrong JSON type
// is 40058 "Warning: wrong json format.") and validated with the errcodes
// of WeCom's documentation where it names one. Accepted requests are
// recorded: [Server.Welcomes], [Server.MsgTemplates], [Server.KFSent],
// [Server.AppMessages] (each with the Body as sent), [Server.Uploads],
// [Server.ContactWays], [Server.Transfers], and every call in
// [Server.Calls].
//
// Messages are checked as WeCom documents them: attachment and kf types
// with their required fields, field lengths (the fake refuses what WeCom
// may cut), app news of 1 to 8 articles, and media ids: an image, file or
// thumbnail media id must be one media/upload issued (or [Server.AddMedia]
// registered) less than 3 days ago, of the right type, else 40007
// ([Server.ExpireMedia] forgets them all). media/upload takes image (JPG
// or PNG by content, 10 MB), voice (2 MB), video (10 MB) and file (20 MB)
// of more than 5 bytes.
//
// State is configured from the test: customers ([Server.AddContact]),
// employees ([Server.AddEmployees]; when none is added every userid is
// valid), welcome codes valid 20 seconds and once
// ([Server.IssueWelcomeCode]; late or unknown is 41050, reused 41051),
// customer-service messages ([Server.QueueKFMessages], read back by
// sync_msg in pages with next_cursor and has_more), and failures
// ([Server.FailNext] for an errcode, [Server.FailHTTPNext] for an HTTP
// status, [Server.FailRandomly] for a share of all calls). An API can be
// given a rate limit ([Server.LimitRate]: calls over it per window answer
// 45009 and do nothing) and a latency ([Server.Delay]: a client gone
// before the call is carried out has it dropped; one gone after it has
// it done without learning it).
//
// Some behaviour is the fake's own choice where WeCom's documentation is
// silent; each such place says "not verified" in its comment.
//
// # Callbacks
//
// [Callback] builds the HTTP requests WeCom sends to an app's callback URL:
// the URL verification GET (msg_signature, timestamp, nonce, echostr) and
// event and message POSTs (an <xml><ToUserName/><AgentID/><Encrypt/></xml>
// envelope, msg_signature, timestamp and nonce in the query), using
// adapters/wecom's Crypto. [ContactChange], [KfMsgOrEvent] and
// [EmployeeMessage] build the decrypted XML of the callback kinds the
// gateway handles.
package wecomfake
