// Package dingtalk connects scrmgw to DingTalk (钉钉): it receives what
// guides and members send the brand's robot, and the organisation's contact
// changes, over a stream-mode connection, and sends robot messages back.
//
// # Receiving: stream mode
//
// [Client.Run] holds one stream connection until its context ends. It
// registers with POST {StreamHost}/v1.0/gateway/connections/open for
// CALLBACK /v1.0/im/bot/messages/get (robot messages), EVENT * (events)
// and SYSTEM ping and disconnect, dials the WebSocket endpoint with the
// one-time ticket, and then runs three goroutines per connection:
//
//   - a reader, which answers SYSTEM pings itself (so they are answered
//     while a slow Record is in progress) and hands every other frame on;
//   - a handler, which records frames one at a time, in the order they
//     came, and produces each frame's ack only after Record returned;
//   - a writer, the only goroutine that writes to the connection: acks,
//     pongs, keep-alive pings and the close frame, one at a time.
//
// When the connection drops it reconnects with exponential backoff and
// jitter (1s doubling up to 1m, each wait a random time between half and
// all of it); a connection that stayed up 30s resets the backoff. A SYSTEM
// disconnect (the gateway rotating connections) is answered by finishing
// the frames in hand, closing, and reconnecting at once.
//
// When ctx ends, Run writes the acks that are ready and a close frame at
// once, so that the gateway stops pushing; it reads on until the gateway
// closes (1s at most), gives every frame read up to 5s to be recorded,
// and returns nil. Acks that were not ready by the close frame cannot
// follow it: DingTalk delivers those events again (the inbox dedupes
// them) and does not deliver robot messages again, which are recorded.
//
// [Client.State], [Client.Connected] and Deps.OnStateChange expose the
// connection's state to /readyz and metrics without this package knowing
// Prometheus:
//
//	prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scrmgw_dingtalk_stream_connected"},
//		func() float64 { if ch.Connected() { return 1 }; return 0 })
//
// # Why not the SDK's StreamClient
//
// github.com/open-dingtalk/dingtalk-stream-sdk-go v0.9.1 speaks the
// protocol, but its StreamClient is not fit for a gateway that must not
// lose or duplicate work (see dingtalkfake's package comment, which
// demonstrates each): it handles every frame in a goroutine of its own
// and writes the acks from there without a lock (concurrent writes to a
// gorilla/websocket connection: a data race, a recovered panic and a lost
// ack); Close races with its read loop and can crash the process with a nil
// dereference, which a SYSTEM disconnect triggers; it cannot be stopped
// cleanly (auto-reconnect dials forever, and Start's context only bounds
// the first dial); and it logs the connections/open body, client secret
// included, at debug level and the ticket at info. So this package runs
// the loop itself on gorilla/websocket, but keeps the SDK's wire types so
// the frames are the SDK's: payload.ConnectionEndpointRequest
// and Response, payload.DataFrame and DataFrameResponse (with the SDK's
// pong and event-result shapes), chatbot.BotCallbackDataModel for robot
// messages (extended with the robotCode DingTalk sends) and the event
// package's headers and SUCCESS/LATER results.
//
// # What is recorded
//
// A robot message becomes an [adapters.Inbound] with Channel "dingtalk",
// DedupKey its msgId, From guide when Deps.Guides knows its senderStaffId
// and member otherwise, SenderID the senderStaffId (or senderId for
// senders outside the organisation), ConversationID, At (createAt), and
// ReplyTo holding what a reply needs (session_webhook, its expiry
// session_webhook_expires in Unix milliseconds, conversation_type "1" or
// "2", robot_code). Kinds: text; richText as text (its text runs joined,
// the first picture's download_code in Attrs); picture as image; audio
// (Text is DingTalk's speech recognition), video and file with their
// download_code; anything else under its own msgtype, so a bot can say it
// cannot read it. Attrs also carry msgtype, sender_nick and
// conversation_title; Brand is Config.Brand.
//
// The contact-change events user_add_org, user_leave_org, user_modify_org
// and user_active_org become one Inbound per user id, Kind "event", Event
// guide.joined, guide.left, guide.updated and guide.updated (activation is
// a change of an existing employee), From guide, SenderID the user id,
// DedupKey eventId+":"+userId, Attrs user_id, event_type and corp_id.
// Other events are acked SUCCESS and logged at debug.
//
// # Acknowledgements and the risk of loss
//
// A frame is acked 200 only after Record returned nil; a redelivery that
// the inbox recognises is acked 200 too. When resolving the sender or
// Record fails, it is tried again in process (3 attempts, 10s each, with
// backoff), and then answered with code 500 (for events, with the LATER
// result, which makes DingTalk deliver the event again).
//
// DingTalk does not deliver robot messages again, whatever the ack says,
// so a robot message whose recording failed all attempts is lost: the
// member's message is never answered. This package narrows that window as
// far as it can: retries before giving up; frames already read when the
// connection drops or Run is stopped are still recorded (for up to 5s on
// shutdown: the wiring should stop Run before the Recorder); and each loss
// is logged at error level with its msg_id and sender, so an operator can
// follow up. A frame that cannot be decoded is acked 200 (retrying cannot
// improve it) and logged at error level.
//
// # Sending
//
// [Client.Send] replies through the session webhook in Outbound.ReplyTo
// while it is valid by Deps.Clock (with a 30s margin), and otherwise, or
// when the webhook refuses the reply (errcode 300001: the session is gone;
// any errcode but 130101, too fast, or a 4xx status), sends proactively as
// the robot: POST {APIBase}/v1.0/robot/groupMessages/send
// for a group (Outbound.Conversation, an openConversationId), else
// /v1.0/robot/oToMessages/batchSend to the one user Outbound.To. Kinds
// ([Kinds], the same to members and guides) map onto webhook msgtypes and
// robot message templates:
//
//	text         text         sampleText        {content}
//	markdown     markdown     sampleMarkdown    {title, text}
//	news         link         sampleLink        {title, text, messageUrl, picUrl}
//	action_card  actionCard   sampleActionCard  {title, text, singleTitle, singleURL}
//	image        -            sampleImageMsg    {photoURL}
//
// from Outbound.Text and the fields title (default: the text's first
// line), description (a link's text; else Outbound.Text, else the
// title), url, picurl (a link's picture, an image's photoURL, or
// media_id), single_title and single_url. A session webhook cannot
// carry an image: such a reply goes out proactively. Another kind, or a
// field DingTalk requires left empty, fails without a call, with
// adapters.ErrInvalidMessage. Receipt.ExternalID is batchSend's or
// groupMessages/send's processQueryKey (empty for webhook replies, which
// return no id).
//
// [Spec] (and [Client.Spec], with the configured robot) says so for
// template checks, workflow validation and dry runs: its Preview is the
// request Send makes, built by the same code: API "sessionWebhook" or the
// OpenAPI path (robot/oToMessages/batchSend, robot/groupMessages/send),
// and the body as sent.
//
// The OpenAPI access token comes from POST {APIBase}/v1.0/oauth2/accessToken
// and is cached in Deps.Tokens under "dingtalk:token:"+ClientID for its
// lifetime less 5 minutes, so it is refreshed before it expires; one
// refresh at a time per process. A token DingTalk refuses
// (InvalidAuthentication) is dropped and the call made once more with a
// fresh one. The token is never sent to session webhooks.
//
// Errors are *adapters.APIError (Channel "dingtalk", Code the HTTP status
// or webhook errcode, Message DingTalk's code, message and requestid)
// whose Kind is: adapters.ErrRateLimited for HTTP 429, the
// Forbidden.AccessDenied.QpsLimit* codes, a recipient in
// flowControlledStaffIdList and webhook errcode 130101;
// adapters.ErrInvalidRecipient for a recipient in invalidStaffIdList or
// staffId.notExisted; adapters.ErrUnauthorized for InvalidAuthentication
// after the retry, wrong app credentials and missing API permissions;
// adapters.ErrTemporary for 5xx answers and network failures;
// adapters.ErrInvalidMessage for a kind DingTalk cannot carry, a missing
// field, and DingTalk's invalidParameter.msg* and miss.param.* codes; and
// nil (not retryable) for anything else, such as a malformed request.
//
// DingTalk has no idempotency key for robot messages, so
// Outbound.IdempotencyKey is not sent: a Send retried after a timeout may
// deliver twice. The outbox, which claims a message before its handler
// sends it, keeps a message from being sent twice otherwise.
//
// # Secrets
//
// The client secret, access tokens, stream tickets and the session part of
// webhook URLs never appear in logs or errors; Config prints and logs its
// secret masked.
package dingtalk
