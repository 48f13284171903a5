package adapters

import "context"

// MomentPoster is implemented by channels where a brand publishes
// content for its guides to post where their contacts see it (WeCom
// Moments, 朋友圈): the channel creates the task asynchronously (a job),
// then tells who of the guides posted.
type MomentPoster interface {
	// CreateMoment asks guides (their ids on the channel) to post m
	// (its text, and a link card or a picture) and returns the job
	// that creates the task.
	CreateMoment(ctx context.Context, guides []string, m *Outbound) (job string, err error)
	// MomentJob tells how the job went: done false while it runs;
	// done with the moment's id and the guides who could not be asked.
	MomentJob(ctx context.Context, job string) (*MomentJob, error)
	// MomentPosts tells, for each guide asked, whether they posted.
	MomentPosts(ctx context.Context, id string) ([]MomentPost, error)
}

// MomentJob is how a moment task's creation went.
type MomentJob struct {
	Done     bool
	ID       string
	Invalid  []string
	ErrorMsg string
}

// MomentPost is whether a guide posted a moment.
type MomentPost struct {
	Guide  string `json:"guide"`
	Posted bool   `json:"posted"`
	// Customers counts the contacts who can see the guide's post, when
	// the channel tells (MomentAudience).
	Customers int `json:"customers"`
}

// MomentAudience is implemented by MomentPosters that tell which
// contacts can see a guide's post of a moment (WeCom
// get_moment_customer_list): their ids on the channel.
type MomentAudience interface {
	MomentCustomers(ctx context.Context, id, guide string) ([]string, error)
}
