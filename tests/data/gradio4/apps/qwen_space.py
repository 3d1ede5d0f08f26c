"""Test app shaped like the Qwen/Qwen2-72B-Instruct Space (Gradio 4.x).

Usage: python qwen_space.py PORT
"""

import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

DEFAULT_SYSTEM = "You are a helpful assistant."


def clear_session():
    return [], ""


def modify_system_session(system):
    if system is None or len(system) == 0:
        system = DEFAULT_SYSTEM
    return system, system, []


def model_chat(query, history, system):
    if query is None:
        query = ""
    if history is None:
        history = []
    answer = f"[system={system}] [turns={len(history)}] you said: {query}"
    tokens = [answer] + [f" word{i}" for i in range(10)]
    partial = ""
    for tok in tokens:
        partial += tok
        yield "", history + [[query, partial]], system
        time.sleep(0.05)


def boom(query):
    yield f"partial before failure: {query}"
    time.sleep(0.05)
    raise gr.Error("deliberate failure from test app")


with gr.Blocks() as demo:
    system_input = gr.Textbox(value=DEFAULT_SYSTEM, lines=1, label="System")
    modify_system = gr.Button("🛠️ Set system prompt and Clear History")
    system_state = gr.Textbox(value=DEFAULT_SYSTEM, visible=False)
    chatbot = gr.Chatbot(label="Qwen2-72B-Instruct")
    textbox = gr.Textbox(lines=1, label="Input")
    clear_history = gr.Button("🧹 Clear History")
    submit_btn = gr.Button("🚀 Send")

    boom_in = gr.Textbox(label="Boom input", visible=False)
    boom_out = gr.Textbox(label="Boom output", visible=False)
    boom_btn = gr.Button("boom", visible=False)

    textbox.submit(
        model_chat,
        inputs=[textbox, chatbot, system_state],
        outputs=[textbox, chatbot, system_input],
    )
    submit_btn.click(
        model_chat,
        inputs=[textbox, chatbot, system_state],
        outputs=[textbox, chatbot, system_input],
    )
    clear_history.click(fn=clear_session, inputs=[], outputs=[chatbot, textbox])
    modify_system.click(
        fn=modify_system_session,
        inputs=[system_input],
        outputs=[system_state, system_input, chatbot],
    )
    boom_btn.click(boom, inputs=[boom_in], outputs=[boom_out], api_name="boom")

demo.queue(api_open=False)

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7860
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        show_error=True,
    )
    print(f"READY {port}", flush=True)
    demo.block_thread()
