// addon: the N-API boundary (node-addon-api). Checks every argument and throws TypeError naming the option; turns a
// start failure into an Error with `code`; reads the atomic counters into a plain object for stats(); runs stop()
// off the JS thread (an AsyncWorker on libuv's pool) so close() returns a Promise.
//
// Lifetime: a running server holds a strong reference to its JS object and a ref'd thread-safe function, so that,
// like a listening net.Server, it keeps the process alive and cannot be garbage-collected; close() releases both.
// The native Server is owned by the JS object (ThreadsServer::server_) and freed by its finalizer.
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>

#include "server.h"

namespace {

using wslab::Server;

constexpr const char* kVersion = "0.1.0";

[[noreturn]] void type_error(Napi::Env env, const std::string& what) {
  throw Napi::TypeError::New(env, "startThreadsServer: " + what);
}

double integer(Napi::Env env, const Napi::Object& o, const char* key, double min, double max) {
  const Napi::Value v = o.Get(key);
  const std::string range = "an integer " + std::to_string(static_cast<long long>(min)) + ".." +
                            std::to_string(static_cast<long long>(max));
  if (!v.IsNumber()) type_error(env, std::string("options.") + key + " must be " + range);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < min || d > max)
    type_error(env, std::string("options.") + key + " must be " + range + ", got " + v.ToString().Utf8Value());
  return d;
}

wslab::Options parse_options(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) type_error(env, "options must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  wslab::Options opt;
  const Napi::Value host = o.Get("host");
  if (!host.IsString() || host.As<Napi::String>().Utf8Value().empty())
    type_error(env, "options.host must be a non-empty string");
  opt.host = host.As<Napi::String>().Utf8Value();
  constexpr double kMaxSafe = 9007199254740991.0, kMaxInt = 2147483647.0;
  opt.port = static_cast<int>(integer(env, o, "port", 0, 65535));
  opt.pool = static_cast<uint32_t>(integer(env, o, "pool", 0, 100000));
  opt.queue_limit = static_cast<uint32_t>(integer(env, o, "queueLimit", 0, kMaxInt));
  opt.thread_stack = static_cast<size_t>(integer(env, o, "threadStack", 16384, 1 << 30));
  opt.max_payload = static_cast<uint64_t>(integer(env, o, "maxPayload", 0, kMaxSafe));
  opt.idle_timeout_ms = static_cast<uint32_t>(integer(env, o, "idleTimeoutMs", 0, kMaxInt));
  opt.max_backpressure = static_cast<uint64_t>(integer(env, o, "maxBackpressure", 0, kMaxSafe));
  opt.handshake_timeout_ms = static_cast<uint32_t>(integer(env, o, "handshakeTimeoutMs", 0, kMaxInt));
  opt.max_conns_per_ip = static_cast<uint32_t>(integer(env, o, "maxConnsPerIp", 0, kMaxInt));
  const Napi::Value defenses = o.Get("defenses");
  if (!defenses.IsBoolean()) type_error(env, "options.defenses must be a boolean");
  opt.defenses = defenses.As<Napi::Boolean>().Value();
  const Napi::Value taskThreads = o.Get("taskThreads");
  if (!taskThreads.IsUndefined() && !taskThreads.IsBoolean()) type_error(env, "options.taskThreads must be a boolean");
  opt.task_threads = taskThreads.IsBoolean() && taskThreads.As<Napi::Boolean>().Value();
  const Napi::Value bounds = o.Get("histogramBounds");
  if (!bounds.IsArray()) type_error(env, "options.histogramBounds must be an array of numbers");
  const Napi::Array arr = bounds.As<Napi::Array>();
  if (arr.Length() > 1000) type_error(env, "options.histogramBounds has more than 1000 bounds");
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const Napi::Value b = arr.Get(i);
    const double d = b.IsNumber() ? b.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || (i > 0 && d <= opt.histogram_bounds.back()))
      type_error(env, "options.histogramBounds must be finite numbers in increasing order");
    opt.histogram_bounds.push_back(d);
  }
  return opt;
}

Napi::Object histogram(Napi::Env env, const wslab::Histogram& h) {
  const wslab::Histogram::Snapshot s = h.snapshot();
  Napi::Array buckets = Napi::Array::New(env, s.cumulative.size());
  for (uint32_t i = 0; i < s.cumulative.size(); ++i) buckets.Set(i, static_cast<double>(s.cumulative[i]));
  Napi::Object o = Napi::Object::New(env);
  o.Set("buckets", buckets);
  o.Set("sum", s.sum_seconds);
  o.Set("count", static_cast<double>(s.count));
  return o;
}

double load(const std::atomic<uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); }
double load(const std::atomic<int64_t>& a) {
  const int64_t v = a.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<double>(v);  // gauges read mid-update can dip below 0 for an instant
}

class ThreadsServer : public Napi::ObjectWrap<ThreadsServer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ThreadsServer",
                       {InstanceAccessor<&ThreadsServer::Port>("port"),
                        InstanceMethod<&ThreadsServer::Stats>("stats"),
                        InstanceMethod<&ThreadsServer::Close>("close")});
  }

  // Only startThreadsServer constructs these: it parks the started Server in AddonData::handover, which the
  // constructor takes over (a JS `new` from anywhere else finds it empty).
  explicit ThreadsServer(const Napi::CallbackInfo& info);

  // Runs when the JS object is collected, which a running server prevents (Ref above): so either after close(), or
  // at environment teardown with the server still running, where blocking to stop it is acceptable.
  ~ThreadsServer() override {
    if (server_ && !server_->stopped()) server_->stop();
  }

  Server& server() { return *server_; }

  void closed() {
    if (!running_) return;
    running_ = false;
    keepalive_.Release();
    Unref();
  }

 private:
  Napi::Value Port(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), server_->port()); }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    wslab::Counters& c = server_->counters();
    Napi::Object o = Napi::Object::New(env);
    o.Set("open", load(c.open));
    o.Set("accepted", load(c.accepted));
    Napi::Object closed = Napi::Object::New(env);
    for (size_t i = 0; i < wslab::kCloseReasons; ++i) closed.Set(wslab::kCloseReasonNames[i], load(c.closed[i]));
    o.Set("closed", closed);
    Napi::Object rejected = Napi::Object::New(env);
    for (size_t i = 0; i < wslab::kRejectReasons; ++i) rejected.Set(wslab::kRejectReasonNames[i], load(c.rejected[i]));
    o.Set("rejected", rejected);
    Napi::Object threads = Napi::Object::New(env);
    threads.Set("working", load(c.working));
    threads.Set("reading", load(c.reading));
    threads.Set("free", load(c.free));
    o.Set("threads", threads);
    o.Set("queued", load(c.queued));
    o.Set("messagesReceived", load(c.messages_received));
    o.Set("messagesSent", load(c.messages_sent));
    o.Set("bytesReceived", load(c.bytes_received));
    o.Set("bytesSent", load(c.bytes_sent));
    o.Set("bufferedBytes", load(c.buffered_bytes));
    o.Set("sendDropped", load(c.send_dropped));
    o.Set("handshake", histogram(env, c.handshake));
    Napi::Object commands = Napi::Object::New(env);
    for (size_t i = 0; i < wslab::kCommands; ++i)
      commands.Set(wslab::kCommandNames[i], histogram(env, c.command(static_cast<wslab::Command>(i))));
    o.Set("commands", commands);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info);

  std::unique_ptr<Server> server_;
  Napi::ThreadSafeFunction keepalive_;
  bool running_ = false;
};

// Runs Server::stop() (joins every thread: can take a while) on a libuv pool thread. Holds a reference to the JS
// object so that neither it nor the Server goes away meanwhile.
class StopWorker : public Napi::AsyncWorker {
 public:
  StopWorker(Napi::Env env, ThreadsServer* target)
      : Napi::AsyncWorker(env, "wslab_threads.close"), target_(target), deferred_(Napi::Promise::Deferred::New(env)) {
    self_ = Napi::Persistent(target->Value());
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      target_->server().stop();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    target_->closed();
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  ThreadsServer* target_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;
};

Napi::Value ThreadsServer::Close(const Napi::CallbackInfo& info) {
  auto* worker = new StopWorker(info.Env(), this);  // deleted by node-addon-api after OnOK/OnError
  const Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

struct AddonData {
  Napi::FunctionReference constructor;
  Server* handover = nullptr;  // set only for the duration of constructor.New() in StartThreadsServer
};

ThreadsServer::ThreadsServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ThreadsServer>(info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  if (data->handover == nullptr) throw Napi::TypeError::New(info.Env(), "use startThreadsServer()");
  server_.reset(data->handover);
  data->handover = nullptr;
  keepalive_ = Napi::ThreadSafeFunction::New(
      info.Env(), Napi::Function::New(info.Env(), [](const Napi::CallbackInfo&) {}), "wslab_threads", 0, 1);
  Ref();  // released by closed()
  running_ = true;
}

Napi::Value StartThreadsServer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const wslab::Options opt = parse_options(info);
  std::unique_ptr<Server> server;
  try {
    server = Server::start(opt);
  } catch (const wslab::StartError& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", e.code);
    throw err;
  }
  AddonData* data = env.GetInstanceData<AddonData>();
  data->handover = server.get();
  Napi::Object obj;
  try {
    obj = data->constructor.New({});
  } catch (...) {
    if (data->handover == nullptr) server.release();  // the constructor took it over before failing
    data->handover = nullptr;
    throw;
  }
  server.release();  // owned by obj now
  return obj;
}

Napi::Value AddonVersion(const Napi::CallbackInfo& info) {
  std::string v = std::string("wslab_threads ") + kVersion;
#if defined(__SANITIZE_ADDRESS__)
  v += " (asan)";
#endif
  return Napi::String::New(info.Env(), v);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData{Napi::Persistent(ThreadsServer::Define(env))};
  env.SetInstanceData(data);  // deleted by node-addon-api at environment teardown
  exports.Set("startThreadsServer", Napi::Function::New(env, StartThreadsServer, "startThreadsServer"));
  exports.Set("addonVersion", Napi::Function::New(env, AddonVersion, "addonVersion"));
  return exports;
}

}  // namespace

NODE_API_MODULE(wslab_threads, Init)
