// The model's own chat template (tokenizer_config.json `chat_template`, Jinja) rendered with @huggingface/jinja.
import { Template } from "@huggingface/jinja";

export interface ChatMessage {
  role: string;
  content: string;
}

export class ChatTemplate {
  #template: Template;
  #specials: Record<string, string>;

  /** specials: the special-token strings the template may use (bos_token, eos_token, ...). */
  constructor(source: string, specials: Record<string, string>) {
    this.#template = new Template(source);
    this.#specials = specials;
  }

  /** The prompt text for `messages`, ending with the assistant header so the model answers. */
  render(messages: ChatMessage[]): string {
    return this.#template.render({ ...this.#specials, messages, add_generation_prompt: true });
  }
}
