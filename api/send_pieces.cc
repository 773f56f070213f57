// SendPieces (api/transport.h): several pieces to a socket as one write,
// as far as its send buffer takes them, without blocking past a timeout.
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "api/transport.h"

namespace okr::api {

bool SendPieces(int sock, std::span<const std::string_view> pieces, int timeout_ms) {
  std::vector<iovec> left;
  for (std::string_view piece : pieces) {
    if (!piece.empty()) left.push_back({const_cast<char*>(piece.data()), piece.size()});
  }
  size_t first = 0;
  while (first < left.size()) {
    msghdr message{};
    message.msg_iov = left.data() + first;
    message.msg_iovlen = left.size() - first;
    ssize_t n = ::sendmsg(sock, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{sock, POLLOUT, 0};
      int ready;
      do {
        ready = ::poll(&p, 1, timeout_ms);
      } while (ready < 0 && errno == EINTR);
      if (ready <= 0 || (p.revents & (POLLERR | POLLNVAL)) != 0) return false;
      continue;
    }
    if (n < 0) return false;
    for (auto sent = static_cast<size_t>(n); sent > 0;) {
      iovec& piece = left[first];
      size_t taken = std::min(sent, piece.iov_len);
      piece.iov_base = static_cast<char*>(piece.iov_base) + taken;
      piece.iov_len -= taken;
      sent -= taken;
      if (piece.iov_len == 0) ++first;
    }
  }
  return true;
}

}  // namespace okr::api
