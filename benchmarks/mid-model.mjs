// "mid", the random model the CPU benchmarks share (README calls it that): d_model 256 x 6 layers, big enough that
// matrix products matter on 2 cores, small enough that one B=8 run of the Python reference takes ~10-13 s. Its
// vocabulary is sized per benchmark (4,096 for the decoders; LLaDA's 126,464 where the vocabulary is what is
// measured).
export const MID = { d_model: 256, n_layers: 6, n_heads: 4, n_kv_heads: 4, mlp_hidden_size: 768, embedding_size: 4096, max_sequence_length: 512 };
