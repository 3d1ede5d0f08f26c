"""Replica of the Hugging Face Space Qwen/Qwen2-72B-Instruct (its ``app.py``).

Source: the Space's ``app.py`` as stored in the code index (file id 48319528579,
found with find_string ``model='qwen2-72b-instruct'`` / ``Qwen2-72B-instruct Chat``;
the index does not name the repository holding that copy).
Gradio version: the Space's README front matter was not found in the index; the app
passes ``concurrency_limit=`` to its event listeners, which needs Gradio >= 4.0. This
replica targets Gradio 4.44.1.

Changes from the original:
* ``os.system('pip install dashscope')`` removed (network at import time);
* ``import dashscope``, ``from dashscope import Generation`` and ``Role`` come from
  ``fake_models`` (same interface, no API key, no network);
* ``demo.launch(max_threads=40)`` moved under ``if __name__ == "__main__":`` so a
  launcher can import ``demo``; ``demo.queue(api_open=False)`` is kept as is.
"""

import os
# os.system('pip install dashscope')  # removed: installs a package from the network
import gradio as gr
from http import HTTPStatus
from fake_models import dashscope  # was: import dashscope
from fake_models import Generation  # was: from dashscope import Generation
from fake_models import Role  # was: from dashscope.api_entities.dashscope_response import Role
from typing import List, Optional, Tuple, Dict
from urllib.error import HTTPError

GRADIO_MAJOR = 4

default_system = 'You are a helpful assistant.'

YOUR_API_TOKEN = os.getenv('YOUR_API_TOKEN')
dashscope.api_key = YOUR_API_TOKEN

History = List[Tuple[str, str]]
Messages = List[Dict[str, str]]

def clear_session() -> History:
    return '', []

def modify_system_session(system: str) -> str:
    if system is None or len(system) == 0:
        system = default_system
    return system, system, []

def history_to_messages(history: History, system: str) -> Messages:
    messages = [{'role': Role.SYSTEM, 'content': system}]
    for h in history:
        messages.append({'role': Role.USER, 'content': h[0]})
        messages.append({'role': Role.ASSISTANT, 'content': h[1]})
    return messages


def messages_to_history(messages: Messages) -> Tuple[str, History]:
    assert messages[0]['role'] == Role.SYSTEM
    system = messages[0]['content']
    history = []
    for q, r in zip(messages[1::2], messages[2::2]):
        history.append([q['content'], r['content']])
    return system, history


def model_chat(query: Optional[str], history: Optional[History], system: str
) -> Tuple[str, str, History]:
    if query is None:
        query = ''
    if history is None:
        history = []
    messages = history_to_messages(history, system)
    messages.append({'role': Role.USER, 'content': query})
    gen = Generation.call(
        model='qwen2-72b-instruct',
        messages=messages,
        result_format='message',
        stream=True
    )
    for response in gen:
        if response.status_code == HTTPStatus.OK:
            role = response.output.choices[0].message.role
            response = response.output.choices[0].message.content
            system, history = messages_to_history(messages + [{'role': role, 'content': response}])
            yield '', history, system
        else:
            raise ValueError('Request id: %s, Status code: %s, error code: %s, error message: %s' % (
                response.request_id, response.status_code,
                response.code, response.message
            ))


with gr.Blocks() as demo:
    gr.Markdown("""<center><font size=8>Qwen2-72B-instruct Chat👾</center>""")

    with gr.Row():
        with gr.Column(scale=3):
            system_input = gr.Textbox(value=default_system, lines=1, label='System')
        with gr.Column(scale=1):
            modify_system = gr.Button("🛠️ Set system prompt and clear history", scale=2)
        system_state = gr.Textbox(value=default_system, visible=False)
    chatbot = gr.Chatbot(label='qwen2-72B-instruct')
    textbox = gr.Textbox(lines=1, label='Input')

    with gr.Row():
        clear_history = gr.Button("🧹 Clear history")
        sumbit = gr.Button("🚀 Send")

    textbox.submit(model_chat,
                 inputs=[textbox, chatbot, system_state],
                 outputs=[textbox, chatbot, system_input],
                 concurrency_limit = 40)
    
    sumbit.click(model_chat,
                 inputs=[textbox, chatbot, system_state],
                 outputs=[textbox, chatbot, system_input],
                 concurrency_limit = 40)
    clear_history.click(fn=clear_session,
                        inputs=[],
                        outputs=[textbox, chatbot],
                        concurrency_limit = 40)
    modify_system.click(fn=modify_system_session,
                        inputs=[system_input],
                        outputs=[system_state, system_input, chatbot],
                        concurrency_limit = 40)

demo.queue(api_open=False)
if __name__ == "__main__":  # the Space calls demo.launch(max_threads=40) unconditionally
    demo.launch(max_threads=40)
