// bench_http_bare: the ceiling for okrd's HTTP benchmark — a cpp-httplib
// server configured as okrd is (TCP_NODELAY, same worker threads) whose
// handlers do no work: GET answers a fixed JSON body of an objective's size,
// POST answers 201 with a small body.
//
//   bench_http_bare [--port P] [--threads N]     (prints "listening on PORT")
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  int port = 0;
  size_t threads = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port")
      port = std::atoi(argv[i + 1]);
    else if (a == "--threads")
      threads = static_cast<size_t>(std::atoi(argv[i + 1]));
  }
  std::string body(1200, 'x');
  body = "{\"id\":\"bench\",\"pad\":\"" + body + "\"}";
  httplib::Server http;
  http.set_tcp_nodelay(true);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.Get(R"(/.*)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/json");
  });
  http.Post(R"(/.*)", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 201;
    res.set_content("{\"ok\":true}", "application/json");
  });
  int bound = port == 0 ? http.bind_to_any_port("127.0.0.1")
                        : (http.bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound < 0) return 1;
  std::printf("listening on %d\n", bound);
  std::fflush(stdout);
  return http.listen_after_bind() ? 0 : 1;
}
