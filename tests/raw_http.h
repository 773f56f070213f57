// Raw HTTP over loopback, for tests that must send bytes no HTTP client
// would (slow headers, oversized or malformed requests) and read okrd's
// answers exactly as they arrive. Plain functions on a socket the caller
// owns; safe from any thread as long as one socket is used by one thread.
#pragma once

#include <chrono>
#include <string>

namespace okr::testing {

// Milliseconds from now until `deadline`, never negative.
int MillisLeft(std::chrono::steady_clock::time_point deadline);

// A TCP connection to 127.0.0.1:`port`; the caller closes it. -1 when it
// cannot connect.
int ConnectLoopback(int port);
// Sends all of `data` (no SIGPIPE); false when the peer has closed.
bool SendAll(int fd, const std::string& data);

// The status of a raw answer ("HTTP/1.1 413 …" → 413); 0 when it is not one.
int StatusOf(const std::string& raw_answer);
// The value of header `name` (any case) in a raw answer's head; "" when absent.
std::string HeaderOf(const std::string& raw_answer, std::string name);
// Whether a raw answer's head has header `name` (any case), even empty.
bool HasHeader(const std::string& raw_answer, const std::string& name);

}  // namespace okr::testing
