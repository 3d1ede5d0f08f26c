"""Gradio apps the tests talk to, built like the real ones the SDK targets.

* ``qwen_app``: a Blocks app shaped like the Qwen2-72B-Instruct Space (a
  hidden system Textbox, a Chatbot, automatic endpoint names) with other
  endpoints declared first, so its ``fn_index`` is not the Space's;
* ``chat_app``: a ``gr.ChatInterface`` with a system message and a slider as
  additional inputs, like Hugging Face's chat template;
* ``busy_app``: a one-slot queue, to fill it.

Replies spell out what the app received, so tests can see the history and
system prompt arrive. Special queries: ``LONG <n>`` streams ``n`` words,
``TRICKY`` streams awkward text, ``FAIL`` raises ``gr.Error`` after two
chunks, ``CRASH`` raises a plain exception (hidden: ``show_error`` is off),
``SLOW`` streams slowly.
"""

import asyncio

import gradio as gr

TRICKY = ["\n", "[0, 1]", " ", '{"json": [1, 2]}', "  two spaces", "\n\n", "é ✓ 日本", " data: x", "\r\n", "end"]


def user_texts(history):
    """The user messages of a history, whatever the content format."""
    return [
        m["content"]
        if isinstance(m["content"], str)
        else "".join(part.get("text", "") for part in m["content"] if isinstance(part, dict))
        for m in history
        if m.get("role") == "user"
    ]


def describe(query, history, system):
    users = user_texts(history)
    return f"[system={system}] [turns={len(users)}: {' | '.join(users)}] you said: {query}"


def tokens_for(query, history, system):
    if query.startswith("LONG "):
        return [f"w{i} " for i in range(int(query.split()[1]))]
    if query == "TRICKY":
        return list(TRICKY)
    words = describe(query, history, system).split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


async def model_chat(query, history, system):
    history = list(history or [])
    tokens = tokens_for(query, history, system)
    # LONG answers come at a steady pace, as a model's tokens do, so that a
    # client sees one update at a time whatever the answer's length.
    delay = 0.2 if query == "SLOW" else 0.001 if query.startswith("LONG ") else 0.0
    answer = ""
    for index, token in enumerate(tokens):
        if query == "FAIL" and index == 2:
            raise gr.Error("the model failed on purpose")
        if query == "CRASH" and index == 1:
            raise ValueError("secret internal detail")
        answer += token
        yield "", history + [{"role": "user", "content": query}, {"role": "assistant", "content": answer}], system
        await asyncio.sleep(delay)


def ping():
    return "pong"


def qwen_app() -> gr.Blocks:
    with gr.Blocks(title="Qwen2-72B-Instruct (test copy)") as demo:
        status = gr.Textbox(label="Status")
        ping_button = gr.Button("Ping")
        ping_button.click(ping, outputs=status, api_name="ping")
        ping_button.click(ping, outputs=status, api_name="ping_again")
        system_input = gr.Textbox(value="You are a helpful assistant.", lines=1, label="System")
        modify_system = gr.Button("Set system prompt and Clear History")
        system_state = gr.Textbox(value="You are a helpful assistant.", visible=False)
        chatbot = gr.Chatbot(label="Qwen2-72B-Instruct")
        textbox = gr.Textbox(lines=1, label="Input")
        clear_history = gr.Button("Clear History")
        submit = gr.Button("Send")
        textbox.submit(
            model_chat,
            inputs=[textbox, chatbot, system_state],
            outputs=[textbox, chatbot, system_input],
            concurrency_limit=None,
        )
        submit.click(
            model_chat,
            inputs=[textbox, chatbot, system_state],
            outputs=[textbox, chatbot, system_input],
            concurrency_limit=None,
        )
        clear_history.click(lambda: [], outputs=[chatbot])
        modify_system.click(
            lambda system: (system, system, []), inputs=[system_input], outputs=[system_state, system_input, chatbot]
        )
    return demo.queue(api_open=False, default_concurrency_limit=None)


async def chat_reply(message, history, system_message, max_new_tokens):
    users = user_texts(history)
    text = (
        f"echo:{message} [system={system_message}] [max={int(max_new_tokens)}] "
        f"[turns={len(users)}: {' | '.join(str(u) for u in users)}]"
    )
    words = text.split(" ")
    reply = ""
    for index, word in enumerate(words):
        reply += ("" if index == 0 else " ") + word
        yield reply
        await asyncio.sleep(0)


def chat_app() -> gr.ChatInterface:
    return gr.ChatInterface(
        chat_reply,
        additional_inputs=[
            gr.Textbox(value="You are a friendly Chatbot.", label="System message"),
            gr.Slider(minimum=1, maximum=2048, value=512, step=1, label="Max new tokens"),
        ],
        api_name="chat",
    ).queue(default_concurrency_limit=None)


async def slow_echo(message):
    for index in range(20):
        yield f"{message} {index}"
        await asyncio.sleep(0.2)


def busy_app() -> gr.Blocks:
    with gr.Blocks() as demo:
        box = gr.Textbox(label="Input")
        out = gr.Textbox(label="Output")
        box.submit(slow_echo, inputs=box, outputs=out, api_name="slow", concurrency_limit=1)
    return demo.queue(max_size=1)
