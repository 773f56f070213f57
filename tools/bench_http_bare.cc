// bench_http_bare: the ceilings for okrd's HTTP benchmark — a cpp-httplib
// server configured as okrd is (TCP_NODELAY, same worker threads). Its GET
// answers a fixed JSON body of an objective's size and its POST answers 201
// with a small body, doing nothing else; with --durable DIR each POST first
// stores one ~240-byte value with a synced RocksDB Put (the naive durable
// server: every request its own write, batched only by RocksDB's own group
// commit of concurrent writers).
//
//   bench_http_bare [--port P] [--threads N] [--durable DIR]   (prints "listening on PORT")
#include <httplib.h>
#include <rocksdb/db.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

// The database the durable POST writes into; null without --durable.
std::unique_ptr<rocksdb::DB> OpenDurable(const std::string& dir) {
  if (dir.empty()) return nullptr;
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) {
    std::fprintf(stderr, "bench_http_bare: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  return std::unique_ptr<rocksdb::DB>(db);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  size_t threads = 16;
  std::string durable_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port")
      port = std::atoi(argv[i + 1]);
    else if (a == "--threads")
      threads = static_cast<size_t>(std::atoi(argv[i + 1]));
    else if (a == "--durable")
      durable_dir = argv[i + 1];
  }
  std::unique_ptr<rocksdb::DB> db = OpenDurable(durable_dir);
  std::atomic<uint64_t> next_key{0};
  const std::string value(240, 'v');  // about one stored check-in event
  std::string body(1200, 'x');
  body = "{\"id\":\"bench\",\"pad\":\"" + body + "\"}";
  httplib::Server http;
  http.set_tcp_nodelay(true);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.Get(R"(/.*)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/json");
  });
  http.Post(R"(/.*)", [&](const httplib::Request&, httplib::Response& res) {
    if (db) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      std::string key = std::to_string(next_key.fetch_add(1));
      if (!db->Put(wo, key, value).ok()) {
        res.status = 503;
        return;
      }
    }
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
