// Package tags keeps members' tags and the tags channels keep of their
// own (WeCom corp tags, 企业客户标签) in step, both ways:
//
//   - a guide's tags on a contact (read when the channel says the contact
//     was edited) become the member's tags with the brand the contact
//     belongs to, and the member's tags of the channel that the guide
//     took off are removed: member.tagged and member.untagged events, so
//     workflows start on them and segments see them;
//   - a change to the channel's tag library (a tag renamed or deleted)
//     renames or removes the tag on every member who has it;
//   - a tag a workflow step or the API sets or removes is marked on the
//     member's contact on every channel that keeps tags (as the guide the
//     member is bound to), before it is written here, so a tag the
//     channel refuses is written nowhere;
//   - a resync walks the members of a channel page by page, at a bounded
//     rate, resumable from the last page, and reconciles both sides,
//     reporting what differed.
//
// A channel takes part by implementing adapters.Tagger; the package
// names no channel.
package tags
