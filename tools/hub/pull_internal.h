// Shared between pull.cc (the plan) and pull_files.cc (the downloads). Private to tessera_hub.
#ifndef TESSERA_HUB_PULL_INTERNAL_H_
#define TESSERA_HUB_PULL_INTERNAL_H_

#include <functional>
#include <string>

#include "http_client.h"
#include "tessera/hub/pull.h"

namespace tessera::hub::internal {

Status Cancelled(const RepoRef& ref);
// A non-2xx answer as a message that says what to do (401/403: HF_TOKEN, gated; 404; 429; 5xx).
Status HttpStatusError(const HttpResponse& r, const std::string& what, const RepoRef& ref,
                       const HubOptions& o);
// No answer at all (refused, reset, timed out).
Status TransportError(const HttpResponse& r, const std::string& what, const HubOptions& o);
// Milliseconds to wait before attempt `attempt + 1` (Retry-After wins, capped at 60 s).
int BackoffMs(const HubOptions& o, int attempt, const HttpResponse& r);
// Sleeps `ms`, returning false early on cancellation.
bool SleepUnlessCancelled(int ms, const std::function<bool()>& cancelled);
// {endpoint}/{repo}/resolve/{commit}/{quoted path}
std::string ResolveUrl(const HubOptions& o, const RepoRef& ref, const std::string& commit,
                       const std::string& path);
bool IsHex(const std::string& s, size_t n);

// Downloads the plan's files that are not cached yet and links every file of the plan into
// snapshots/{commit}/. Adds the bytes transferred to *downloaded.
Status FetchFiles(const PullPlan& plan, const HubOptions& o, const PullOptions& po,
                  int64_t* downloaded);

}  // namespace tessera::hub::internal

#endif  // TESSERA_HUB_PULL_INTERNAL_H_
