// A non-owning reference to a callable, for streaming callbacks without std::function's
// allocation. The referenced callable must outlive the FunctionRef (pass it down, never store).
#ifndef TESSERA_TEXT_TOKENIZER_FUNCTION_REF_H_
#define TESSERA_TEXT_TOKENIZER_FUNCTION_REF_H_

#include <memory>
#include <type_traits>
#include <utility>

namespace tessera::text::internal {

template <typename Sig>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit, like a function pointer
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

}  // namespace tessera::text::internal

#endif  // TESSERA_TEXT_TOKENIZER_FUNCTION_REF_H_
