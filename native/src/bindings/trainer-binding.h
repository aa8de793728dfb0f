// The JS class Trainer (native/src/train/trainer.h): create, trainStep, logits, exportWeights, exportState,
// importState, dispose. Every call is a job on the trainer's own native thread and returns a Promise.
#pragma once
#include <napi.h>

namespace dllm_bindings {

Napi::Function defineTrainer(Napi::Env env);

}  // namespace dllm_bindings
