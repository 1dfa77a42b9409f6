# Rewrites the checked-in completion scripts from the built binary's command tree:
#   cmake --build BUILD --target regen-completions
# (or by hand: cmake -DHOOKCTL=path/to/hookctl -DOUT=completions -P completions/regen.cmake).
foreach(shell bash zsh fish)
  if(shell STREQUAL "bash")
    set(file hookctl.bash)
  elseif(shell STREQUAL "zsh")
    set(file _hookctl)
  else()
    set(file hookctl.fish)
  endif()
  execute_process(COMMAND ${HOOKCTL} completion ${shell}
                  OUTPUT_FILE ${OUT}/${file}.tmp RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(REMOVE ${OUT}/${file}.tmp)
    message(FATAL_ERROR "hookctl completion ${shell} failed (exit ${rc})")
  endif()
  file(RENAME ${OUT}/${file}.tmp ${OUT}/${file})
  message(STATUS "wrote ${OUT}/${file}")
endforeach()
